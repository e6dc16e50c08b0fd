import autocannon from 'autocannon';
import { cpuTimeMs } from './cpu.ts';

export interface LoadOptions {
  url: string;
  connections: number;
  durationSec: number;
  /** open-loop-ish fixed rate over all connections (autocannon overallRate); omitted = as fast as possible */
  overallRate?: number;
  /** charge the CPU time of this process (and its children) to the run */
  pid?: number;
  /** called about once a second with the responses counted so far */
  onProgress?: (responses: number, elapsedSec: number) => void;
}

export interface LoadResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  responses: number;
  errors: number;
  non2xx: number;
  /** CPU time of `pid` per 2xx response, in microseconds */
  cpuUsPerRequest: number;
}

/** Nearest-rank percentile of ascending-sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** The middle value (the lower of the two middles for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : Number.NaN;
}

/** A run's result from its first `count` 2xx latencies (ms) and the target's CPU time over it. */
export function loadResult(latencies: Float64Array, count: number, seconds: number, cpuMs: number, errors: number, non2xx: number): LoadResult {
  const sorted = latencies.subarray(0, count).sort();
  return {
    requestsPerSec: count / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    responses: count,
    errors,
    non2xx,
    cpuUsPerRequest: (cpuMs * 1000) / count,
  };
}

/**
 * One autocannon run. Latency percentiles come from every 2xx response's own timing (autocannon's
 * histogram has 1 ms resolution, too coarse for sub-millisecond overheads).
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let finish: (error: Error | null, result: autocannon.Result) => void = () => {};
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (error, result) => (error ? reject(error) : resolve(result));
  });
  const instance = autocannon(
    { url: options.url, connections: options.connections, duration: options.durationSec, overallRate: options.overallRate, timeout: 10 },
    (error, result) => finish(error, result),
  );
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode < 200 || statusCode >= 300) return;
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = responseTime;
  });
  const cpuBefore = cpuTimeMs(options.pid);
  const startedAt = process.hrtime.bigint();
  const elapsedSec = () => Number(process.hrtime.bigint() - startedAt) / 1e9;
  const ticker = options.onProgress && setInterval(() => options.onProgress!(count, elapsedSec()), 1000);
  try {
    const result = await finished;
    const seconds = elapsedSec();
    return loadResult(latencies, count, seconds, cpuTimeMs(options.pid) - cpuBefore, result.errors + result.timeouts, result.non2xx);
  } finally {
    if (ticker) clearInterval(ticker);
  }
}
