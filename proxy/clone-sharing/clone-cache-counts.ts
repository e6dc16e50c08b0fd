import type { CloneVcs } from './clone-key.ts';

/** How a clone-protocol request was answered, as X-Switchyard-Clone-Cache and the metrics say it. */
export const CLONE_CACHE_RESULTS = ['miss', 'coalesced', 'hit', 'bypass'] as const;
export type CloneCacheResult = (typeof CLONE_CACHE_RESULTS)[number];

export const CLONE_VCSES: readonly CloneVcs[] = ['git', 'hg'];

type PerResult = Record<CloneCacheResult, number>;

/** Clone sharing's counters since start: requests by VCS and result, body bytes served from the spool. */
export class CloneCacheCounts {
  readonly requests = Object.fromEntries(
    CLONE_VCSES.map((vcs) => [vcs, Object.fromEntries(CLONE_CACHE_RESULTS.map((result) => [result, 0])) as PerResult]),
  ) as Record<CloneVcs, PerResult>;

  readonly servedBytes = Object.fromEntries(CLONE_VCSES.map((vcs) => [vcs, 0])) as Record<CloneVcs, number>;

  counted(vcs: CloneVcs, result: CloneCacheResult): void {
    this.requests[vcs][result]++;
  }

  served(vcs: CloneVcs, bytes: number): void {
    this.servedBytes[vcs] += bytes;
  }

  /** requests per result, every VCS together */
  totals(): PerResult {
    const totals = Object.fromEntries(CLONE_CACHE_RESULTS.map((result) => [result, 0])) as PerResult;
    for (const vcs of CLONE_VCSES) for (const result of CLONE_CACHE_RESULTS) totals[result] += this.requests[vcs][result];
    return totals;
  }
}
