// The proxy's clone-sharing series, read from Prometheus text (its control API's or the
// supervisor's /metrics).

export type Vcs = 'git' | 'hg';
export const CACHE_RESULTS = ['miss', 'coalesced', 'hit', 'bypass'] as const;
export type CacheResult = (typeof CACHE_RESULTS)[number];
export type CacheCounts = Record<CacheResult, number>;

export interface CloneCacheMetrics {
  requests: Record<Vcs, CacheCounts>;
  servedBytes: Record<Vcs, number>;
  diskBytes: number;
  entries: number;
  /** which of the four series the text has at all */
  present: Set<string>;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function samples(text: string): Sample[] {
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((label) => [label[1], label[2]]));
    found.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return found;
}

const zeroCounts = (): CacheCounts => ({ miss: 0, coalesced: 0, hit: 0, bypass: 0 });

/** Sums the series over any other labels (the supervisor adds `proxy`). */
export function cloneCacheMetrics(text: string): CloneCacheMetrics {
  const metrics: CloneCacheMetrics = {
    requests: { git: zeroCounts(), hg: zeroCounts() },
    servedBytes: { git: 0, hg: 0 },
    diskBytes: 0,
    entries: 0,
    present: new Set(),
  };
  for (const { name, labels, value } of samples(text)) {
    const vcs = labels.vcs as Vcs;
    if (name === 'switchyard_clone_cache_requests_total' && vcs in metrics.requests && (CACHE_RESULTS as readonly string[]).includes(labels.result)) {
      metrics.requests[vcs][labels.result as CacheResult] += value;
    } else if (name === 'switchyard_clone_cache_served_bytes_total' && vcs in metrics.servedBytes) {
      metrics.servedBytes[vcs] += value;
    } else if (name === 'switchyard_clone_cache_disk_bytes') {
      metrics.diskBytes += value;
    } else if (name === 'switchyard_clone_cache_entries') {
      metrics.entries += value;
    } else {
      continue;
    }
    metrics.present.add(name);
  }
  return metrics;
}

/** What changed per result between two readings. */
export function countsSince(before: CacheCounts, after: CacheCounts): CacheCounts {
  return { miss: after.miss - before.miss, coalesced: after.coalesced - before.coalesced, hit: after.hit - before.hit, bypass: after.bypass - before.bypass };
}
