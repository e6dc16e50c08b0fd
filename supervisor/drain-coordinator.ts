import type { EventLog } from './event-log.ts';
import type { Fleet, FleetPool, FleetWorker, WorkerState } from './fleet.ts';
import type { RecycleReason } from './recycle-policy.ts';

/** The workers of a pool that are staying: a worker a reload retires counts neither as in nor as out. */
function staying(pool: FleetPool): FleetWorker[] {
  return pool.workers.filter((worker) => !worker.retiring);
}

/**
 * May this ready worker leave rotation now? Only while fewer than `maxUnavailable` workers of its
 * pool are out (draining, restarting or down), and never if it is the last ready one.
 */
export function canTakeOut(workers: ReadonlyArray<{ name: string; state: WorkerState }>, candidate: string, maxUnavailable: number): boolean {
  const ready = workers.filter((worker) => worker.state === 'ready');
  if (!ready.some((worker) => worker.name === candidate)) return false;
  const unavailable = workers.length - ready.length;
  return unavailable < maxUnavailable && ready.length >= 2;
}

/** What a drain needs from the outside world (the proxies, PM2, the worker's health endpoint). */
export interface DrainPorts {
  /** requests still in flight on this worker: what the proxies have sent it plus what it reports */
  inflight(worker: FleetWorker): Promise<number>;
  /** PM2 restart of this instance */
  restart(worker: FleetWorker): Promise<void>;
  /** resolves true once a process other than `previousPid` answers its health check */
  waitHealthy(worker: FleetWorker, previousPid: number | undefined, timeoutMs: number): Promise<boolean>;
  recycled(worker: FleetWorker, reason: RecycleReason): void;
  /**
   * On a site of several hosts, whether the whole site can spare this worker now (taking its
   * lease: lib/site-leases.ts): undefined when it can, else why not. Without it, the pool's
   * workers on this host are all there is.
   */
  siteTakeOut?(worker: FleetWorker): Promise<string | undefined>;
}

export interface DrainTiming {
  /** how often in-flight counts are polled during a drain */
  pollMs: number;
  /** how long a restarted worker may take to answer its health check */
  restartTimeoutMs: number;
}

/** A refused fleet action, with the HTTP status the API should answer. */
export class FleetActionError extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** How long a restarted worker may take to answer its health check (DrainTiming.restartTimeoutMs in production). */
export const RESTART_TIMEOUT_MS = 90_000;

const POLICY_REASONS: ReadonlySet<RecycleReason> = new Set(['requests', 'age', 'rss']);
/** Consecutive zero in-flight readings before a drain counts as done: covers a request the proxy picked just before it saw the drain. */
const ZERO_READINGS = 2;

interface Pending {
  worker: FleetWorker;
  reason: RecycleReason;
  /** the process the request was about; a policy request for a process since replaced is moot */
  pid: number | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs recycles one pool-safe step at a time: mark draining (the proxies stop sending) -> wait
 * for in-flight 0 or drainTimeoutSec -> PM2 restart -> health OK -> ready. Requests wait in a
 * FIFO until their pool can spare the worker.
 */
export class DrainCoordinator {
  private readonly queue: Pending[] = [];
  private readonly active = new Set<string>();
  /** workers whose site-wide lease is being asked for */
  private readonly asking = new Set<string>();
  private stopped = false;

  constructor(
    private readonly fleet: Fleet,
    private readonly ports: DrainPorts,
    private readonly events: EventLog,
    private readonly timing: DrainTiming,
  ) {
    // Any state change can free a slot in a pool (a worker back to ready, a drain finished).
    fleet.on('state', () => this.tick());
  }

  /** Queues a recycle; false if this worker already has one queued or running. */
  requestRecycle(name: string, reason: RecycleReason): boolean {
    const worker = this.worker(name);
    if (this.active.has(name) || this.queue.some((entry) => entry.worker === worker)) return false;
    this.queue.push({ worker, reason, pid: worker.pid });
    this.tick();
    return true;
  }

  /** Queues a recycle of every worker of the pool; they run `maxUnavailable` at a time. */
  roll(poolName: string): string[] {
    const pool = this.fleet.pools.get(poolName);
    if (!pool) throw new FleetActionError(404, `no supervised pool ${poolName}`);
    return staying(pool).filter((worker) => this.requestRecycle(worker.name, 'roll')).map((worker) => worker.name);
  }

  /**
   * Takes a worker out of rotation and leaves it out (until `undrain` or a recycle); false when it
   * was out already. A second `drain` event says whether in-flight work reached 0 within the timeout.
   */
  async drain(name: string): Promise<boolean> {
    const worker = this.worker(name);
    if (worker.state === 'draining' || worker.state === 'restarting') return false;
    const pool = this.fleet.pools.get(worker.pool)!;
    const refusal = `${name} is ${worker.state}; draining it would leave pool ${pool.name} without enough ready workers (maxUnavailable ${pool.config.maxUnavailable})`;
    if (!this.ports.siteTakeOut) {
      if (!canTakeOut(staying(pool), name, pool.config.maxUnavailable)) throw new FleetActionError(409, refusal);
    } else {
      if (worker.state !== 'ready' || this.active.has(name) || this.asking.has(name)) throw new FleetActionError(409, refusal);
      const why = await this.askLease(worker);
      if (why !== undefined) throw new FleetActionError(409, `${refusal}: ${why}`);
      if (worker.state !== 'ready' || this.active.has(name)) return false; // it left rotation meanwhile; its lease goes with its next state
    }
    this.fleet.setState(worker, 'draining', 'manual drain');
    this.events.record({ kind: 'drain', pool: worker.pool, worker: name, reason: 'manual' });
    const started = Date.now();
    void this.waitDrained(worker, pool.config.drainTimeoutSec * 1000).then((drained) => {
      if (worker.state === 'draining') this.events.record({ kind: 'drain', pool: worker.pool, worker: name, reason: 'manual', detail: { drained, drainMs: Date.now() - started } });
    });
    return true;
  }

  /** Puts a manually drained worker back into rotation. */
  undrain(name: string): void {
    const worker = this.worker(name);
    if (worker.state !== 'draining' || this.active.has(name)) throw new FleetActionError(409, `${name} is ${worker.state}, not manually drained`);
    this.fleet.setState(worker, 'ready', 'manual undrain');
    this.events.record({ kind: 'ready', pool: worker.pool, worker: name, reason: 'manual' });
    this.tick();
  }

  /** The queued recycle reason of a worker, if any. */
  pendingReason(name: string): RecycleReason | undefined {
    return this.queue.find((entry) => entry.worker.name === name)?.reason;
  }

  isBusy(name: string): boolean {
    return this.active.has(name);
  }

  /** Starts every queued recycle its pool can afford now; call whenever the fleet changes. */
  tick(): void {
    if (this.stopped) return;
    for (const entry of [...this.queue]) {
      const { worker } = entry;
      // A recycle started below changes a state, which re-enters tick(): skip what it already took.
      if (!this.queue.includes(entry) || this.active.has(worker.name)) continue;
      if (POLICY_REASONS.has(entry.reason) && entry.pid !== worker.pid) {
        this.remove(entry); // that process is gone already
        continue;
      }
      const pool = this.fleet.pools.get(worker.pool)!;
      const alreadyOut = worker.state === 'draining'; // manually drained: nothing more to take out
      if (!alreadyOut && this.ports.siteTakeOut) this.askSite(entry);
      else if (alreadyOut || canTakeOut(staying(pool), worker.name, pool.config.maxUnavailable)) this.start(entry);
    }
  }

  private start(entry: Pending): void {
    const { worker } = entry;
    this.remove(entry);
    this.active.add(worker.name);
    void this.recycle(worker, entry.reason).finally(() => {
      this.active.delete(worker.name);
      this.tick();
    });
  }

  /** Starts the recycle once the site grants the worker's lease; a refusal leaves it queued for a later tick. */
  private askSite(entry: Pending): void {
    const { worker } = entry;
    if (worker.state !== 'ready' || this.asking.has(worker.name)) return;
    this.askLease(worker).then(
      (why) => {
        if (why !== undefined || this.stopped || !this.queue.includes(entry) || this.active.has(worker.name)) return;
        if (worker.state === 'ready' || worker.state === 'draining') this.start(entry); // else its lease goes with its next state
      },
      () => {}, // asked again at a later tick
    );
  }

  /** The site's answer for this worker's lease (siteTakeOut), one ask per worker at a time. */
  private async askLease(worker: FleetWorker): Promise<string | undefined> {
    this.asking.add(worker.name);
    try {
      return await this.ports.siteTakeOut!(worker);
    } finally {
      this.asking.delete(worker.name);
    }
  }

  /**
   * Takes a worker out for good (a reload removed it): no recycle of it starts any more, one
   * running finishes first; then it is marked draining, at once when nothing runs (the proxies
   * stop sending before the caller goes on), and resolves once nothing is in flight on it or its
   * pool's drainTimeoutSec passed. It is never put back; stopping its process is the caller's.
   */
  async retire(name: string): Promise<{ drained: boolean; drainMs: number }> {
    const worker = this.worker(name);
    worker.retiring = true;
    const queued = this.queue.findIndex((entry) => entry.worker === worker);
    if (queued >= 0) this.queue.splice(queued, 1);
    while (this.active.has(name)) await sleep(this.timing.pollMs); // a recycle is bounded by its own timeouts
    const started = Date.now();
    this.fleet.setState(worker, 'draining', 'removed by a config reload');
    this.events.record({ kind: 'drain', pool: worker.pool, worker: name, reason: 'reload' });
    const drained = await this.waitDrained(worker, this.fleet.pools.get(worker.pool)!.config.drainTimeoutSec * 1000);
    return { drained, drainMs: Date.now() - started };
  }

  /** Stops starting recycles; the running ones finish. */
  stop(): void {
    this.stopped = true;
  }

  get running(): number {
    return this.active.size;
  }

  private async recycle(worker: FleetWorker, reason: RecycleReason): Promise<void> {
    const pool = this.fleet.pools.get(worker.pool)!;
    const started = Date.now();
    // Synchronous up to the first await, so the next worker tick() looks at sees this one as out.
    this.fleet.setState(worker, 'draining', `recycle: ${reason}`);
    this.events.record({ kind: 'drain', pool: pool.name, worker: worker.name, reason });
    const drained = await this.waitDrained(worker, pool.config.drainTimeoutSec * 1000);
    const drainMs = Date.now() - started;
    const previousPid = worker.pid;
    this.fleet.setState(worker, 'restarting', `recycle: ${reason}`);
    const restartStarted = Date.now();
    try {
      await this.ports.restart(worker);
    } catch (error) {
      this.fleet.setState(worker, 'down', 'restart failed');
      this.events.record({ kind: 'error', pool: pool.name, worker: worker.name, reason: `restart failed: ${(error as Error).message}` });
      return;
    }
    const restartMs = Date.now() - restartStarted;
    if (!(await this.ports.waitHealthy(worker, previousPid, this.timing.restartTimeoutMs))) {
      this.fleet.setState(worker, 'down', 'no health after restart');
      this.events.record({ kind: 'error', pool: pool.name, worker: worker.name, reason: 'restarted worker did not pass its health check' });
      return;
    }
    this.ports.recycled(worker, reason);
    this.events.record({
      kind: 'recycle',
      pool: pool.name,
      worker: worker.name,
      reason,
      detail: { drainMs, drainTimedOut: !drained, restartMs, totalMs: Date.now() - started, previousPid, pid: worker.pid },
    });
    // After the event: going ready may start the next recycle of the pool at once.
    this.fleet.setState(worker, 'ready', `recycled: ${reason}`);
  }

  /** True once nothing is in flight, false when the drain timeout passed first. */
  private async waitDrained(worker: FleetWorker, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let zeros = 0;
    while (Date.now() < deadline) {
      zeros = (await this.ports.inflight(worker)) === 0 ? zeros + 1 : 0;
      if (zeros >= ZERO_READINGS) return true;
      await sleep(this.timing.pollMs);
    }
    return false;
  }

  private remove(entry: Pending): void {
    this.queue.splice(this.queue.indexOf(entry), 1);
  }

  private worker(name: string): FleetWorker {
    const worker = this.fleet.get(name);
    if (!worker) throw new FleetActionError(404, `no supervised worker ${name}`);
    if (worker.retiring) throw new FleetActionError(409, `${name} is being removed (the config no longer has it)`);
    return worker;
  }
}
