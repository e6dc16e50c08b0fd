import { EventEmitter } from 'node:events';
import type { Lane, PoolConfig } from '../lib/config.ts';
import type { Balancer } from './balancer.ts';
import { FairQueue, type FairlyQueued } from './fair-queue.ts';
import { Slot, SlotLedger } from './slot-ledger.ts';
import type { Upstream } from './upstream.ts';

export type { Slot } from './slot-ledger.ts';

export type AcquireFailure = 'queue-full' | 'queue-timeout' | 'client-share' | 'closing';

export interface AcquireRequest {
  balancer: Balancer;
  /** balancing key: the client IP */
  key: string;
  /** fairness key: who the request counts against (see fair-share-key.ts) */
  client: string;
  lane: Lane;
  /** lower is served first */
  priority: number;
}

export type AcquireCallback = (failure: AcquireFailure | undefined, slot: Slot | undefined) => void;

class Waiter implements FairlyQueued {
  done = false;
  timer: NodeJS.Timeout | undefined = undefined;
  readonly client: string;
  readonly priority: number;
  readonly enqueuedAt = performance.now();

  constructor(
    readonly request: AcquireRequest,
    readonly callback: AcquireCallback,
  ) {
    this.client = request.client;
    this.priority = request.priority;
  }
}

export interface PoolStats {
  queued: number;
  queuePeak: number;
  queueFull: number;
  queueTimeouts: number;
  /** refused because the client already had its share of the queue waiting (429) */
  clientShareRefused: number;
}

/** What a retiring proxy process's pool does about slots it lacks or no longer needs (handoff.ts). */
export interface RetiredSlots {
  /** a request had to wait: ask the process that took over for one of its slots */
  borrow(pool: Pool, request: AcquireRequest): void;
  /** after each release: slots that freed and found no waiter go back to the process that took over */
  released(pool: Pool): void;
}

/** One client's part of a pool right now, for the dashboard. */
export interface ClientShare {
  lane: Lane;
  client: string;
  holding: number;
  queued: number;
}

/**
 * A pool of workers with per-worker concurrency slots and a bounded queue (queue.max waiters in
 * all) shared fairly: most urgent priority first, and within a priority the client that has used
 * the least worker time lately (fair-queue.ts; who holds which slots and what they used:
 * slot-ledger.ts). A client holds at most perClient.maxInFlight slots at once (its other requests wait, and others'
 * go first) and has at most perClient.maxQueued requests waiting (429 past that).
 */
export class Pool extends EventEmitter {
  readonly name: string;
  /** the workers new requests may go to (a reload replaces the list, not the workers it keeps) */
  private workers: Upstream[];
  private settings: PoolConfig;
  private readonly queue = new FairQueue<Waiter>();
  private readonly slots: SlotLedger;
  /** WebSocket places per client (entries leave at zero) */
  private readonly upgradedBy = new Map<string, number>();
  /** client connections upgraded (or being upgraded) to this pool's workers */
  private upgradedConnections = 0;
  private readonly counters: PoolStats = { queued: 0, queuePeak: 0, queueFull: 0, queueTimeouts: 0, clientShareRefused: 0 };
  private retired: RetiredSlots | undefined;

  constructor(
    name: string,
    config: PoolConfig,
    upstreams: Upstream[],
  ) {
    super();
    this.name = name;
    this.workers = upstreams;
    this.settings = config;
    this.slots = new SlotLedger(config.perClient.maxInFlight ?? config.concurrency, () => this.afterRelease());
  }

  get upstreams(): Upstream[] {
    return this.workers;
  }

  get config(): PoolConfig {
    return this.settings;
  }

  /**
   * A reload: new settings and worker list (kept workers are the same objects, with their slots
   * and state). Waiters keep the timeout they were queued with; a smaller queue or share turns
   * away newcomers until it is met, and a larger one hands out what it frees at once.
   */
  reconfigure(config: PoolConfig, upstreams: Upstream[]): void {
    this.settings = config;
    this.workers = upstreams;
    this.slots.setMaxInFlight(config.perClient.maxInFlight ?? config.concurrency);
    this.dispatch();
  }

  /** the pool's counters, as of now (a copy) */
  get stats(): PoolStats {
    return { ...this.counters };
  }

  get queueDepth(): number {
    return this.queue.size;
  }

  get upgraded(): number {
    return this.upgradedConnections;
  }

  /**
   * A place among the pool's upgraded connections (config maxUpgraded, and of those
   * perClient.maxUpgraded for one client); false when none is left for this client.
   */
  reserveUpgrade(client: string): boolean {
    const own = this.upgradedBy.get(client) ?? 0;
    if (this.upgradedConnections >= this.config.maxUpgraded || own >= this.config.perClient.maxUpgraded) return false;
    this.upgradedConnections++;
    this.upgradedBy.set(client, own + 1);
    return true;
  }

  releaseUpgrade(client: string): void {
    this.upgradedConnections--;
    const left = (this.upgradedBy.get(client) ?? 1) - 1;
    if (left > 0) this.upgradedBy.set(client, left);
    else this.upgradedBy.delete(client);
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

  /** A slot now, or undefined when every worker is busy or the client holds its share (then wait). */
  private tryAcquire(request: AcquireRequest): Slot | undefined {
    if (!this.slots.mayHoldAnother(request.client)) return undefined;
    const upstream = request.balancer.pick(this.upstreams, request.key);
    return upstream && this.occupy(upstream, request);
  }

  /** Queues for a slot: the callback runs exactly once; returns a cancel function. */
  private wait(request: AcquireRequest, callback: AcquireCallback): () => void {
    const waiter = new Waiter(request, callback);
    if (this.queue.queuedOf(request.client) >= this.config.perClient.maxQueued) {
      this.counters.clientShareRefused++;
      callback('client-share', undefined);
      return () => {};
    }
    if (this.queue.size >= this.config.queue.max && !this.evictFor(waiter)) {
      this.counters.queueFull++;
      callback('queue-full', undefined);
      return () => {};
    }
    waiter.timer = setTimeout(() => {
      if (this.remove(waiter)) {
        this.counters.queueTimeouts++;
        callback('queue-timeout', undefined);
      }
    }, this.config.queue.timeoutMs);
    this.queue.push(waiter);
    this.counters.queued = this.queue.size;
    this.counters.queuePeak = Math.max(this.counters.queuePeak, this.queue.size);
    this.retired?.borrow(this, request);
    return () => {
      if (this.remove(waiter)) clearTimeout(waiter.timer);
    };
  }

  /** Hands free slots to waiters: call after a slot frees or a worker becomes ready. */
  dispatch(): void {
    const eligible = (client: string) => this.slots.mayHoldAnother(client);
    const now = performance.now();
    const usage = (client: string) => this.slots.usageOf(client, now);
    while (this.queue.size > 0) {
      const waiter = this.queue.next(eligible, usage, now);
      if (!waiter) return;
      const upstream = waiter.request.balancer.pick(this.upstreams, waiter.request.key);
      if (!upstream) return;
      waiter.done = true;
      this.queue.take(waiter);
      this.counters.queued = this.queue.size;
      clearTimeout(waiter.timer);
      waiter.callback(undefined, this.occupy(upstream, waiter.request));
    }
  }

  /**
   * This process is being replaced (handoff.ts): from now on it fills only the slots it holds, each
   * once more as it frees, for a request of its own that waits; the others go to its successor.
   */
  retire(slots: RetiredSlots): void {
    this.retired = slots;
    for (const upstream of this.upstreams) upstream.capSlots(upstream.inflight);
  }

  /** The successor lent a slot of this worker: a waiter takes it, or it goes back. */
  lend(upstream: Upstream): void {
    upstream.capSlots(upstream.slotLimit + 1);
    this.dispatch();
    this.giveBackUnused();
  }

  private afterRelease(): void {
    this.dispatch();
    this.giveBackUnused();
  }

  private giveBackUnused(): void {
    if (!this.retired) return;
    for (const upstream of this.upstreams) if (upstream.slotLimit > upstream.inflight) upstream.capSlots(upstream.inflight);
    this.retired.released(this);
  }

  /** Who holds and waits for this pool's workers now, the biggest first (at most `limit`). */
  topClients(limit: number): ClientShare[] {
    const shares = new Map<string, ClientShare>();
    const shareOf = (lane: Lane, client: string) => {
      const id = `${lane} ${client}`;
      let share = shares.get(id);
      if (!share) shares.set(id, (share = { lane, client, holding: 0, queued: 0 }));
      return share;
    };
    for (const slot of this.slots.holders()) shareOf(slot.lane, slot.client).holding++;
    for (const waiter of this.queue) shareOf(waiter.request.lane, waiter.client).queued++;
    return [...shares.values()].sort((a, b) => b.holding + b.queued - (a.holding + a.queued)).slice(0, limit);
  }

  setState(upstream: Upstream, state: Upstream['state']): void {
    if (upstream.state === state) return;
    const previous = upstream.changeState(state);
    this.emit('state', upstream, previous);
    if (state === 'ready') this.dispatch();
  }

  private occupy(upstream: Upstream, request: AcquireRequest): Slot {
    return this.slots.take(upstream, request.client, request.lane);
  }

  /** A full queue makes room for a newcomer when fairness says so (FairQueue.victimFor): the victim gets 503. */
  private evictFor(arriving: Waiter): boolean {
    const victim = this.queue.victimFor(arriving);
    if (!victim) return false;
    this.remove(victim);
    clearTimeout(victim.timer);
    this.counters.queueFull++;
    victim.callback('queue-full', undefined);
    return true;
  }

  private remove(waiter: Waiter): boolean {
    if (waiter.done) return false;
    waiter.done = true;
    this.queue.remove(waiter);
    this.counters.queued = this.queue.size;
    return true;
  }

  close(): void {
    for (const waiter of [...this.queue]) {
      if (this.remove(waiter)) {
        clearTimeout(waiter.timer);
        waiter.callback('closing', undefined);
      }
    }
    for (const upstream of this.upstreams) upstream.close();
  }
}
