import type { PoolConfig } from '../lib/config.ts';

/** A worker's place in its pool: its index (its name is `<pool>-<index>`) and address. */
export interface PlacedWorker {
  index: number;
  host: string;
  port: number;
}

/** A pool's workers, in order: its static targets, or supervised instances on portBase+i. */
export function poolAddresses(pool: PoolConfig): PlacedWorker[] {
  if (!pool.targets) return Array.from({ length: pool.instances }, (_, index) => ({ index, host: pool.host, port: pool.portBase + index }));
  return pool.targets.map((target, index) => {
    const split = target.lastIndexOf(':');
    return { index, host: target.slice(0, split).replace(/^\[|\]$/g, ''), port: Number(target.slice(split + 1)) };
  });
}

/** A pool's worker list after a config change: each entry an existing worker kept or a new one. */
export interface UpstreamPlan<T extends PlacedWorker> {
  workers: Array<{ keep: T } | { add: PlacedWorker }>;
  /** workers that are no longer in the pool */
  removed: T[];
}

/**
 * Which existing workers a changed pool keeps. A supervised worker is kept when its name still
 * names the same address (the supervisor knows a worker by name, and instance i listens on
 * portBase+i). A static target is kept when its address is still listed, under the name it has;
 * a new target takes the lowest index no kept worker has, so no two workers of a pool share a name.
 */
export function planUpstreams<T extends PlacedWorker>(existing: readonly T[], pool: PoolConfig): UpstreamPlan<T> {
  const wanted = poolAddresses(pool);
  const unmatched = new Set(existing);
  const sameAddress = (a: PlacedWorker, b: PlacedWorker) => a.host === b.host && a.port === b.port;
  const matches = wanted.map((want) => {
    for (const candidate of unmatched) {
      if (sameAddress(candidate, want) && (pool.targets !== undefined || candidate.index === want.index)) {
        unmatched.delete(candidate);
        return candidate;
      }
    }
    return undefined;
  });
  const taken = new Set(matches.flatMap((match) => (match ? [match.index] : [])));
  let nextFree = 0;
  const workers = wanted.map((want, position): { keep: T } | { add: PlacedWorker } => {
    const match = matches[position];
    if (match) return { keep: match };
    if (pool.targets === undefined) return { add: want };
    while (taken.has(nextFree)) nextFree++;
    taken.add(nextFree);
    return { add: { ...want, index: nextFree } };
  });
  return { workers, removed: [...unmatched] };
}
