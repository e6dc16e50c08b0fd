import { EventEmitter } from 'node:events';
import type { WorkerHealthReport } from '../lib/worker-health.ts';
import type { PoolConfig, SwitchyardConfig } from '../lib/config.ts';
import type { ProxyWorkerState } from '../lib/fleet-channel.ts';
import { thresholdsFor, type RecycleThresholds } from './recycle-policy.ts';
import { poolRunsOn, siteOf, workerName, type Site } from '../lib/site.ts';

/**
 * ready: in rotation. draining: the proxies send nothing new (a recycle, or a manual drain).
 * restarting: PM2 is replacing the process. down: not answering (crashed, starting, or unknown).
 */
export type WorkerState = 'ready' | 'draining' | 'restarting' | 'down';

/** What the worker reports at /_worker/health. */
export type WorkerHealth = WorkerHealthReport;

/** How a supervisor state looks to a proxy: a restarting worker stays out of rotation like a draining one. */
export function proxyStateOf(state: WorkerState): ProxyWorkerState {
  return state === 'restarting' ? 'draining' : state;
}

/** Consecutive failed health polls before a ready worker counts as down. */
const FAILURES_BEFORE_DOWN = 2;

export class FleetWorker {
  readonly name: string;
  state: WorkerState = 'down';
  /** PM2's id for this instance, once seen in `pm2 list` */
  pmId: number | undefined;
  pid: number | undefined;
  /** restarts of this instance as PM2 counts them */
  restarts = 0;
  health: WorkerHealth | undefined;
  healthAt = 0;
  healthFailures = 0;
  limits: RecycleThresholds;
  stateSince = Date.now();
  /** removed by a config reload: drained, then stopped, never put back into rotation */
  retiring = false;
  /** this process's place in the pool's jitter (thresholdsFor) */
  private draw: number;

  constructor(
    readonly pool: string,
    readonly index: number,
    readonly host: string,
    readonly port: number,
    private recycle: PoolConfig['recycle'],
    private readonly random: () => number,
    /** the site host it runs on, on a site of several hosts */
    readonly siteHost?: string,
  ) {
    this.name = workerName(pool, index, siteHost);
    this.draw = random();
    this.limits = thresholdsFor(recycle, this.draw);
  }

  /** A new process gets its own jittered limits. */
  newProcess(pid: number): void {
    this.pid = pid;
    this.draw = this.random();
    this.limits = thresholdsFor(this.recycle, this.draw);
  }

  /** A reloaded recycle policy holds for the running process at once, at the same place in the jitter. */
  setRecycle(recycle: PoolConfig['recycle']): void {
    this.recycle = recycle;
    this.limits = thresholdsFor(recycle, this.draw);
  }

  snapshot() {
    return {
      name: this.name,
      pool: this.pool,
      index: this.index,
      host: this.siteHost,
      address: this.host.includes(":") ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`,
      state: this.state,
      stateSince: new Date(this.stateSince).toISOString(),
      pmId: this.pmId,
      pid: this.pid,
      restarts: this.restarts,
      inflight: this.health?.inflight,
      served: this.health?.served,
      rssBytes: this.health?.rssBytes,
      heapUsedBytes: this.health?.heapUsedBytes,
      uptimeSec: this.health?.uptimeSec,
      limits: this.limits,
      retiring: this.retiring || undefined,
    };
  }
}

export interface FleetPool {
  name: string;
  config: PoolConfig;
  workers: FleetWorker[];
}

/**
 * The supervisor's view of every worker it supervises: those of this host (`<pool>-<index>`, or
 * `<pool>-<host>-<index>` on a site of several hosts; PM2 app `worker-<pool>`).
 * Emits 'state' (worker, previous, reason) on every change; that is what gets published; and
 * 'membership' when a config reload adds or removes pools or workers.
 */
export class Fleet extends EventEmitter {
  readonly pools = new Map<string, FleetPool>();
  private readonly workers = new Map<string, FleetWorker>();

  /** this host's name on a site of several hosts (part of its workers' names) */
  readonly siteHost: string | undefined;
  /** where this host's workers listen */
  private readonly address: string | undefined;

  constructor(
    config: SwitchyardConfig,
    private readonly random: () => number = Math.random,
    readonly site: Site = siteOf(config),
  ) {
    super();
    this.siteHost = site.multiHost ? site.self.name : undefined;
    this.address = site.multiHost ? site.self.address : undefined;
    for (const [name, poolConfig] of Object.entries(config.pools)) {
      // static targets are not ours to restart; another host's workers are its supervisor's
      if (poolRunsOn(config, poolConfig, site)) this.addPool(name, poolConfig);
    }
  }

  /** A supervised pool with `config.instances` workers, down until their health checks pass. */
  addPool(name: string, config: PoolConfig): FleetPool {
    const pool: FleetPool = { name, config, workers: [] };
    this.pools.set(name, pool);
    this.addWorkers(pool, config.instances);
    return pool;
  }

  /** `count` more workers on the pool's next indices and ports, down until their health checks pass. */
  addWorkers(pool: FleetPool, count: number): FleetWorker[] {
    const added: FleetWorker[] = [];
    for (let i = 0; i < count; i++) {
      const index = pool.workers.length === 0 ? 0 : Math.max(...pool.workers.map((worker) => worker.index)) + 1;
      const worker = new FleetWorker(pool.name, index, this.address ?? pool.config.host, pool.config.portBase + index, pool.config.recycle, this.random, this.siteHost);
      pool.workers.push(worker);
      this.workers.set(worker.name, worker);
      added.push(worker);
    }
    this.emit('membership');
    return added;
  }

  /** A reloaded pool config: drain settings from now on, recycle limits of the running processes too. */
  setPoolConfig(pool: FleetPool, config: PoolConfig): void {
    pool.config = config;
    for (const worker of pool.workers) worker.setRecycle(config.recycle);
  }

  /** Forgets a worker that was retired (drained, its process being stopped); an empty pool goes with it. */
  removeWorker(worker: FleetWorker): void {
    if (this.workers.get(worker.name) !== worker) return;
    this.workers.delete(worker.name);
    const pool = this.pools.get(worker.pool);
    if (pool) {
      pool.workers.splice(pool.workers.indexOf(worker), 1);
      if (pool.workers.length === 0) this.pools.delete(pool.name);
    }
    this.emit('membership');
  }

  get(name: string): FleetWorker | undefined {
    return this.workers.get(name);
  }

  all(): FleetWorker[] {
    return [...this.workers.values()];
  }

  /** The worker a PM2 process runs, if it is one of ours. */
  byPm2(appName: string, instance: number | undefined): FleetWorker | undefined {
    if (!appName.startsWith('worker-') || instance === undefined) return undefined;
    return this.workers.get(workerName(appName.slice('worker-'.length), instance, this.siteHost));
  }

  setState(worker: FleetWorker, state: WorkerState, reason?: string): void {
    if (worker.state === state) return;
    const previous = worker.state;
    worker.state = state;
    worker.stateSince = Date.now();
    this.emit('state', worker, previous, reason);
  }

  /**
   * A health poll result (undefined: no answer). Ready and down follow the health checks;
   * draining and restarting belong to whoever started them.
   */
  observeHealth(worker: FleetWorker, health: WorkerHealth | undefined, now = Date.now()): void {
    if (health) {
      if (health.pid !== worker.pid) worker.newProcess(health.pid);
      worker.health = health;
      worker.healthAt = now;
      worker.healthFailures = 0;
      if (worker.state === 'down') this.setState(worker, 'ready', 'health check passed');
      return;
    }
    worker.healthFailures++;
    if (worker.state === 'ready' && worker.healthFailures >= FAILURES_BEFORE_DOWN) this.setState(worker, 'down', 'health check failed');
  }

  snapshot() {
    return [...this.pools.values()].map((pool) => ({ ...poolSummary(pool.name, pool.config), workers: pool.workers.map((worker) => worker.snapshot()) }));
  }
}

/** What the fleet view says of a pool besides its workers (also for a pool with no worker on this host). */
export function poolSummary(name: string, config: PoolConfig) {
  return { name, maxUnavailable: config.maxUnavailable, drainTimeoutSec: config.drainTimeoutSec, recycle: config.recycle };
}
