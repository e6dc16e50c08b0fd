// How each host's supervisor tells the others what its workers are doing (with REDIS_URL, on a
// site of several hosts): one field per host in the `switchyard:hosts` hash, refreshed every
// HOST_REPORT_MS, signed with the fleet key (lib/fleet-signing.ts signHostReport). Readers judge
// a host gone by `at`.

export const HOSTS_KEY = 'switchyard:hosts';

export const HOST_REPORT_MS = 2000;
/** A host whose last report is older than this is gone (five reports missed: a supervisor busy for a moment is not). */
export const HOST_GONE_MS = 5 * HOST_REPORT_MS;
/** A report this old no longer verifies: the site view then knows the host only from the config. */
export const HOST_REPORT_KEEP_MS = 24 * 3600_000;

const MAX_TEXT = 256;
const MAX_WORKERS = 1024;
const MAX_RECYCLE_SERIES = 1024;

export interface ReportedWorker {
  name: string;
  pool: string;
  index: number;
  state: string;
  stateSince: string;
  address: string;
  pid?: number;
  restarts: number;
  inflight?: number;
  served?: number;
  rssBytes?: number;
  uptimeSec?: number;
  /** its recycle thresholds (0: none) */
  limits: { maxRequests: number; maxAgeSec: number; maxRssBytes: number };
}

export interface HostReport {
  host: string;
  /** its supervisor's API base URL, as the other hosts reach it */
  supervisor: string;
  /** ISO time its supervisor started */
  startedAt: string;
  /** lib/site.ts siteLayoutDigest of its config (absent from supervisors before it) */
  layout?: string;
  /** ms since the epoch of this report */
  at: number;
  workers: ReportedWorker[];
  /** its supervisor's recycle counters since it started */
  recycles: Array<{ pool: string; reason: string; count: number }>;
}

const text = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= MAX_TEXT;
const count = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const optionalCount = (value: unknown) => value === undefined || count(value);

function workerOf(raw: unknown): ReportedWorker | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const w = raw as Record<string, unknown>;
  if (!text(w.name) || !text(w.pool) || !count(w.index) || !text(w.state) || !text(w.stateSince) || !text(w.address) || !count(w.restarts)) return undefined;
  if (![w.pid, w.inflight, w.served, w.rssBytes, w.uptimeSec].every(optionalCount)) return undefined;
  const limits = (w.limits ?? {}) as Record<string, unknown>;
  if (!count(limits.maxRequests) || !count(limits.maxAgeSec) || !count(limits.maxRssBytes)) return undefined;
  const { name, pool, index, state, stateSince, address, restarts, pid, inflight, served, rssBytes, uptimeSec } = w as unknown as ReportedWorker;
  const { maxRequests, maxAgeSec, maxRssBytes } = limits as ReportedWorker['limits'];
  return { name, pool, index, state, stateSince, address, restarts, pid, inflight, served, rssBytes, uptimeSec, limits: { maxRequests, maxAgeSec, maxRssBytes } };
}

/** The report in `raw` when every field is there and of its type (strings and lists bounded), else undefined. */
export function hostReportOf(raw: unknown): HostReport | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { host, supervisor, startedAt, layout, at, workers, recycles } = raw as Record<string, unknown>;
  if (layout !== undefined && !text(layout)) return undefined;
  if (!text(host) || !text(supervisor) || !/^https?:\/\//.test(supervisor) || !text(startedAt) || !Number.isSafeInteger(at)) return undefined;
  if (!Array.isArray(workers) || workers.length > MAX_WORKERS || !Array.isArray(recycles) || recycles.length > MAX_RECYCLE_SERIES) return undefined;
  const parsedWorkers = workers.map(workerOf);
  if (parsedWorkers.some((worker) => worker === undefined)) return undefined;
  const parsedRecycles = recycles.map((entry: unknown) => {
    const r = (entry ?? {}) as Record<string, unknown>;
    return text(r.pool) && text(r.reason) && count(r.count) ? { pool: r.pool, reason: r.reason, count: r.count } : undefined;
  });
  if (parsedRecycles.some((entry) => entry === undefined)) return undefined;
  return { host, supervisor, startedAt, ...(layout === undefined ? {} : { layout }), at: at as number, workers: parsedWorkers as ReportedWorker[], recycles: parsedRecycles as HostReport['recycles'] };
}
