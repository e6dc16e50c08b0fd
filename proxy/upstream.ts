import http from 'node:http';
import type { Socket } from 'node:net';
import { workerName } from '../lib/site.ts';

export type UpstreamState = 'ready' | 'draining' | 'down';

export interface UpstreamOptions {
  pool: string;
  index: number;
  /** the site host it runs on, on a site of several hosts */
  siteHost?: string;
  host: string;
  port: number;
  concurrency: number;
  idleSocketTimeoutMs: number;
}

/** One worker process as the proxy sees it: address, slots in use, state, keep-alive agent. */
export class Upstream {
  readonly name: string;
  readonly pool: string;
  readonly index: number;
  readonly siteHost: string | undefined;
  readonly host: string;
  readonly port: number;
  /** slots of the worker (written only by reconfigure) */
  concurrency: number;
  /** bounded to the worker's concurrency, so the proxy never opens more sockets than it has slots */
  readonly agent: http.Agent;
  private idleSocketTimeoutMs: number;
  /**
   * Each pooled socket as the last sweep found it: idle since when, and its byte count then (a
   * Map, not a property: sockets keep one V8 shape). Rebuilt by every sweep from the free lists.
   */
  private idleSince = new Map<Socket, { since: number; bytesWritten: number }>();
  private lastSweepAt: number | undefined;
  readonly target: URL;
  // Written only through the methods below: the pool owns state and slots, the forwarder and the
  // health check report failures.
  private currentState: UpstreamState = 'ready';
  private slotsTaken = 0;
  private servedCount = 0;
  private failureCount = 0;
  private lastFailure: string | undefined;
  /** slots of this worker that another proxy process holds: the one this process replaces (handoff.ts) */
  private heldElsewhere = 0;
  /** a retiring proxy process takes no slot beyond those it holds: their count, shrinking as they free */
  private retiredCap: number | undefined;

  constructor(options: UpstreamOptions) {
    this.pool = options.pool;
    this.index = options.index;
    this.siteHost = options.siteHost;
    this.name = workerName(options.pool, options.index, options.siteHost);
    this.host = options.host;
    this.port = options.port;
    this.concurrency = options.concurrency;
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: options.concurrency,
      maxFreeSockets: options.concurrency,
      scheduling: 'lifo',
    });
    // Idle keep-alive sockets are closed by closeIdleSockets, not by the agent's `timeout` option:
    // that arms a timer on every socket and refreshes it on every read and write of every request.
    this.idleSocketTimeoutMs = options.idleSocketTimeoutMs;
    this.target = new URL(`http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`);
  }

  get state(): UpstreamState {
    return this.currentState;
  }

  /** slots taken now */
  get inflight(): number {
    return this.slotsTaken;
  }

  get served(): number {
    return this.servedCount;
  }

  get failures(): number {
    return this.failureCount;
  }

  get lastError(): string | undefined {
    return this.lastFailure;
  }

  /**
   * A reload changed the pool's settings: slots and socket bounds follow at once; requests in
   * flight keep the slots they hold (a smaller concurrency just gives out no more until they end).
   */
  reconfigure(options: Pick<UpstreamOptions, 'concurrency' | 'idleSocketTimeoutMs'>): void {
    this.concurrency = options.concurrency;
    this.agent.maxSockets = options.concurrency;
    this.agent.maxFreeSockets = options.concurrency;
    this.idleSocketTimeoutMs = options.idleSocketTimeoutMs;
  }

  /** Pool.setState's part: returns the previous state. */
  changeState(state: UpstreamState): UpstreamState {
    const previous = this.currentState;
    this.currentState = state;
    return previous;
  }

  slotTaken(): void {
    this.slotsTaken++;
    this.servedCount++;
  }

  slotFreed(): void {
    this.slotsTaken--;
  }

  /** A send to the worker failed (forwarder). */
  recordFailure(code: string): void {
    this.failureCount++;
    this.lastFailure = code;
  }

  /** What is wrong with the worker, found other than by a failed send (health check). */
  noteProblem(reason: string): void {
    this.lastFailure = reason;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get hasFreeSlot(): boolean {
    return this.state === 'ready' && this.inflight < this.slotLimit;
  }

  /** the slots this process may fill: fewer than the concurrency while another process holds some */
  get slotLimit(): number {
    return this.retiredCap ?? Math.max(0, this.concurrency - this.heldElsewhere);
  }

  /** How many of the worker's slots the other proxy process holds (handoff.ts). */
  setHeldElsewhere(slots: number): void {
    this.heldElsewhere = slots;
  }

  /** A retiring process's limit: the slots it still holds (handoff.ts), or none any more. */
  capSlots(limit: number | undefined): void {
    this.retiredCap = limit;
  }

  snapshot() {
    return {
      name: this.name,
      pool: this.pool,
      index: this.index,
      host: this.siteHost,
      address: this.address,
      state: this.state,
      inflight: this.inflight,
      /** slots another proxy process holds (during a proxy replacement), when any */
      heldElsewhere: this.heldElsewhere || undefined,
      served: this.served,
      failures: this.failures,
      lastError: this.lastError,
      /** connections to the worker carrying a request, and requests waiting for one (never more than the slots taken) */
      connectionsInUse: countAll(this.agent.sockets),
      waitingForConnection: countAll(this.agent.requests),
    };
  }

  /**
   * Closes keep-alive sockets idle for the timeout or longer (call a few times per timeout). Nothing
   * is noted per request: a free socket that was busy at the last sweep, or has written bytes since,
   * went idle after that sweep, so it counts as idle since then. That errs towards closing early,
   * never late, which is the side that matters: the timeout sits below the worker's own.
   */
  closeIdleSockets(now = Date.now()): void {
    const seen = new Map<Socket, { since: number; bytesWritten: number }>();
    for (const sockets of Object.values(this.agent.freeSockets)) {
      for (const socket of [...(sockets ?? [])]) {
        const before = this.idleSince.get(socket);
        const bytesWritten = socket.bytesWritten;
        const since = before && before.bytesWritten === bytesWritten ? before.since : (this.lastSweepAt ?? now);
        if (now - since >= this.idleSocketTimeoutMs) socket.destroy();
        else seen.set(socket, { since, bytesWritten });
      }
    }
    this.idleSince = seen;
    this.lastSweepAt = now;
  }

  close(): void {
    this.agent.destroy();
  }
}

function countAll(lists: NodeJS.ReadOnlyDict<unknown[]>): number {
  let count = 0;
  for (const key in lists) count += lists[key]?.length ?? 0;
  return count;
}
