import { EventEmitter } from 'node:events';
import type { PoolConfig } from '../lib/config.ts';
import type { Balancer } from './balancer.ts';
import { Upstream } from './upstream.ts';

export type AcquireFailure = 'queue-full' | 'queue-timeout' | 'closing';

export interface AcquireRequest {
  balancer: Balancer;
  /** balancing key: the client IP */
  key: string;
  /** lower is served first */
  priority: number;
}

export type AcquireCallback = (failure: AcquireFailure | undefined, slot: Slot | undefined) => void;

interface Waiter {
  request: AcquireRequest;
  callback: AcquireCallback;
  timer: NodeJS.Timeout;
  enqueuedAt: number;
  done: boolean;
}

/** A slot on a worker, held from dispatch until the worker has produced its whole response. */
export class Slot {
  private released = false;

  constructor(
    private readonly pool: Pool,
    readonly upstream: Upstream,
  ) {}

  /** Idempotent: a second release frees nothing. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.upstream.inflight--;
    this.pool.dispatch();
  }
}

export interface PoolStats {
  queued: number;
  queuePeak: number;
  queueFull: number;
  queueTimeouts: number;
}

/**
 * A pool of workers with per-worker concurrency slots and a bounded queue (queue.max waiters in
 * all), FIFO within each priority. When a slot frees, the oldest waiter of the most urgent
 * priority takes it.
 */
export class Pool extends EventEmitter {
  readonly name: string;
  readonly upstreams: Upstream[];
  private readonly queues = new Map<number, Waiter[]>();
  private readonly priorities: number[] = [];
  private queued = 0;
  /** client connections upgraded (or being upgraded) to this pool's workers */
  private upgradedConnections = 0;
  readonly stats: PoolStats = { queued: 0, queuePeak: 0, queueFull: 0, queueTimeouts: 0 };

  constructor(
    name: string,
    readonly config: PoolConfig,
    upstreams: Upstream[],
  ) {
    super();
    this.name = name;
    this.upstreams = upstreams;
  }

  get queueDepth(): number {
    return this.queued;
  }

  get upgraded(): number {
    return this.upgradedConnections;
  }

  /** A place among the pool's upgraded connections (config maxUpgraded); false when none is left. */
  reserveUpgrade(): boolean {
    if (this.upgradedConnections >= this.config.maxUpgraded) return false;
    this.upgradedConnections++;
    return true;
  }

  releaseUpgrade(): void {
    this.upgradedConnections--;
  }

  /** seconds a client should wait before trying again after a 503 */
  get retryAfterSec(): number {
    return Math.max(1, Math.ceil(this.config.queue.timeoutMs / 1000));
  }

  /**
   * Gets a slot now, or queues. The callback runs exactly once (synchronously when a slot is
   * free). Returns a cancel function for a client that goes away while it waits.
   */
  acquire(request: AcquireRequest, callback: AcquireCallback): () => void {
    const slot = this.tryAcquire(request);
    if (slot) {
      callback(undefined, slot);
      return () => {};
    }
    return this.wait(request, callback);
  }

  /** A slot now, or undefined when every worker is busy (then call wait). */
  tryAcquire(request: AcquireRequest): Slot | undefined {
    const upstream = request.balancer.pick(this.upstreams, request.key);
    return upstream && this.occupy(upstream);
  }

  /** Queues for a slot: the callback runs exactly once; returns a cancel function. */
  wait(request: AcquireRequest, callback: AcquireCallback): () => void {
    if (this.queued >= this.config.queue.max && !this.evictLessUrgentThan(request.priority)) {
      this.stats.queueFull++;
      callback('queue-full', undefined);
      return () => {};
    }
    const waiter: Waiter = {
      request,
      callback,
      enqueuedAt: Date.now(),
      done: false,
      timer: setTimeout(() => {
        if (this.remove(waiter)) {
          this.stats.queueTimeouts++;
          callback('queue-timeout', undefined);
        }
      }, this.config.queue.timeoutMs),
    };
    this.enqueue(waiter);
    return () => {
      if (this.remove(waiter)) clearTimeout(waiter.timer);
    };
  }

  /** Hands free slots to waiters: call after a slot frees or a worker becomes ready. */
  dispatch(): void {
    while (this.queued > 0) {
      const waiter = this.peek();
      if (!waiter) return;
      const upstream = waiter.request.balancer.pick(this.upstreams, waiter.request.key);
      if (!upstream) return;
      this.remove(waiter);
      clearTimeout(waiter.timer);
      waiter.callback(undefined, this.occupy(upstream));
    }
  }

  setState(upstream: Upstream, state: Upstream['state']): void {
    if (upstream.state === state) return;
    const previous = upstream.state;
    upstream.state = state;
    this.emit('state', upstream, previous);
    if (state === 'ready') this.dispatch();
  }

  private occupy(upstream: Upstream): Slot {
    upstream.inflight++;
    upstream.served++;
    return new Slot(this, upstream);
  }

  private enqueue(waiter: Waiter): void {
    const priority = waiter.request.priority;
    let queue = this.queues.get(priority);
    if (!queue) {
      queue = [];
      this.queues.set(priority, queue);
      this.priorities.push(priority);
      this.priorities.sort((a, b) => a - b);
    }
    queue.push(waiter);
    this.queued++;
    this.stats.queued = this.queued;
    this.stats.queuePeak = Math.max(this.stats.queuePeak, this.queued);
  }

  /**
   * A full queue still admits a more urgent request: the newest waiter of the least urgent
   * priority gives way (503), so a flood of page requests cannot lock browsers out.
   */
  private evictLessUrgentThan(priority: number): boolean {
    for (const candidate of [...this.priorities].reverse()) {
      if (candidate <= priority) return false;
      const queue = this.queues.get(candidate)!;
      const victim = queue[queue.length - 1];
      if (!victim) continue;
      this.remove(victim);
      clearTimeout(victim.timer);
      this.stats.queueFull++;
      victim.callback('queue-full', undefined);
      return true;
    }
    return false;
  }

  private peek(): Waiter | undefined {
    for (const priority of this.priorities) {
      const queue = this.queues.get(priority)!;
      if (queue.length > 0) return queue[0];
    }
    return undefined;
  }

  private remove(waiter: Waiter): boolean {
    if (waiter.done) return false;
    waiter.done = true;
    const queue = this.queues.get(waiter.request.priority)!;
    const position = queue.indexOf(waiter);
    if (position >= 0) queue.splice(position, 1);
    this.queued--;
    this.stats.queued = this.queued;
    return true;
  }

  close(): void {
    for (const queue of this.queues.values()) {
      for (const waiter of [...queue]) {
        if (this.remove(waiter)) {
          clearTimeout(waiter.timer);
          waiter.callback('closing', undefined);
        }
      }
    }
    for (const upstream of this.upstreams) upstream.close();
  }
}
