import type { SwitchyardConfig } from '../lib/config.ts';
import { Pool } from './pool.ts';
import { Upstream } from './upstream.ts';
import { poolAddresses, type PlacedWorker } from '../lib/site.ts';
import { planUpstreams } from './upstream-plan.ts';

function newUpstream(pool: string, place: PlacedWorker, config: SwitchyardConfig): Upstream {
  return new Upstream({
    pool,
    ...place,
    concurrency: config.pools[pool].concurrency,
    idleSocketTimeoutMs: config.proxy.upstream.idleSocketTimeoutMs,
  });
}

/** Builds the upstream list of each pool: static targets, or supervised instances on portBase+i. */
export function buildPools(config: SwitchyardConfig): Map<string, Pool> {
  const pools = new Map<string, Pool>();
  for (const [name, poolConfig] of Object.entries(config.pools)) {
    pools.set(name, new Pool(name, poolConfig, poolAddresses(poolConfig, config).map((place) => newUpstream(name, place, config))));
  }
  return pools;
}

/** What a reload did to the pool set. */
export interface PoolSetChange {
  /** workers new to the proxy, by pool (a new pool's too) */
  added: Array<{ pool: Pool; upstreams: Upstream[] }>;
  /** pools that are new, to be watched like the first ones */
  newPools: Pool[];
  /** workers taken out of rotation by this reload */
  retired: Upstream[];
}

interface RetiredWorker {
  upstream: Upstream;
  /** true while it may still have work: its own requests, or (a removed pool's) waiters it may serve */
  busy(): boolean;
}

/** A worker with no slot taken and no connection carrying a request. */
function workerIdle(upstream: Upstream): boolean {
  const { inflight, connectionsInUse, waitingForConnection } = upstream.snapshot();
  return inflight === 0 && connectionsInUse === 0 && waitingForConnection === 0;
}

/**
 * Workers a reload took out: each is closed (its idle sockets) once nothing it serves is left,
 * never before, so a removed worker finishes what it has. One that a later reload lists again
 * before that is taken back, so a worker never has two Upstreams counting its slots apart.
 */
export class RetiredWorkers {
  private readonly waiting = new Map<Upstream, RetiredWorker>();

  add(worker: RetiredWorker): void {
    this.waiting.set(worker.upstream, worker);
  }

  /** the names of those still finishing */
  names(): string[] {
    return [...this.waiting.keys()].map((upstream) => upstream.name);
  }

  /** the retired workers of a pool, by its name */
  of(pool: string): Upstream[] {
    return [...this.waiting.keys()].filter((upstream) => upstream.pool === pool);
  }

  /** A retired worker back in rotation: it is not closed. */
  reclaim(upstream: Upstream): void {
    this.waiting.delete(upstream);
  }

  /** At shutdown, once every client connection is gone: the rest. */
  closeAll(): void {
    for (const upstream of this.waiting.keys()) upstream.close();
    this.waiting.clear();
  }

  /** Closes the workers whose work is done; returns them. */
  closeFinished(): Upstream[] {
    const closed: Upstream[] = [];
    for (const worker of this.waiting.values()) {
      if (worker.busy()) continue;
      this.waiting.delete(worker.upstream);
      worker.upstream.close();
      closed.push(worker.upstream);
    }
    return closed;
  }
}

/**
 * Applies a reloaded config's pools to the proxy's, in place. A kept pool takes its new settings
 * and worker list; a worker with the same name and address (or target address) stays the same
 * object, with its slots, state and sockets (upstream-plan.ts). A removed worker leaves the list,
 * so it gets no new request, and is closed when it has finished (RetiredWorkers). A removed pool
 * leaves the map, so no new request is routed to it, but keeps its workers for the requests
 * already in it, waiting ones included.
 */
export function reconcilePools(pools: Map<string, Pool>, config: SwitchyardConfig, retired: RetiredWorkers): PoolSetChange {
  const change: PoolSetChange = { added: [], newPools: [], retired: [] };
  for (const [name, pool] of pools) {
    if (config.pools[name]) continue;
    pools.delete(name);
    for (const upstream of pool.upstreams) {
      retired.add({ upstream, busy: () => pool.queueDepth > 0 || !workerIdle(upstream) });
      change.retired.push(upstream);
    }
  }
  for (const [name, poolConfig] of Object.entries(config.pools)) {
    const pool = pools.get(name);
    const current = new Set(pool?.upstreams ?? []);
    const plan = planUpstreams([...current, ...retired.of(name)], poolConfig, config);
    const added: Upstream[] = [];
    const upstreams = plan.workers.map((entry) => {
      if ('add' in entry) {
        const upstream = newUpstream(name, entry.add, config);
        added.push(upstream);
        return upstream;
      }
      retired.reclaim(entry.keep);
      entry.keep.reconfigure({ concurrency: poolConfig.concurrency, idleSocketTimeoutMs: config.proxy.upstream.idleSocketTimeoutMs });
      return entry.keep;
    });
    if (pool) pool.reconfigure(poolConfig, upstreams);
    else {
      const created = new Pool(name, poolConfig, upstreams);
      pools.set(name, created);
      change.newPools.push(created);
    }
    if (added.length > 0) change.added.push({ pool: pools.get(name)!, upstreams: added });
    for (const upstream of plan.removed) {
      if (!current.has(upstream)) continue; // retired by an earlier reload, and still
      retired.add({ upstream, busy: () => !workerIdle(upstream) });
      change.retired.push(upstream);
    }
  }
  return change;
}
