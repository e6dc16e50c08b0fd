import type { PoolConfig, SwitchyardConfig } from '../lib/config.ts';
import { poolAddresses, type PlacedWorker } from '../lib/site.ts';

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
export function planUpstreams<T extends PlacedWorker>(existing: readonly T[], pool: PoolConfig, site: Pick<SwitchyardConfig, 'hosts'> = {}): UpstreamPlan<T> {
  const wanted = poolAddresses(pool, site);
  const unmatched = new Set(existing);
  const sameAddress = (a: PlacedWorker, b: PlacedWorker) => a.host === b.host && a.port === b.port;
  const matches = wanted.map((want) => {
    for (const candidate of unmatched) {
      if (sameAddress(candidate, want) && (pool.targets !== undefined || (candidate.index === want.index && candidate.siteHost === want.siteHost))) {
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
