import { request } from './http.ts';

/** How one request of the load ended: a status, or the client-side error. */
export interface LoadOutcome {
  url: string;
  startedAt: number;
  ms: number;
  status?: number;
  /** ECONNREFUSED, ECONNRESET, ... or 'client timeout' when the client had to give up waiting */
  error?: string;
  worker?: string;
}

export const CLIENT_TIMEOUT = 'client timeout';

export interface BoundedLoadOptions {
  /** requested in turn */
  urls: string[];
  concurrency: number;
  /** the load stops after this many requests or this long, whichever comes first */
  maxRequests: number;
  maxMs: number;
  /** a request still unanswered after this is cut by the client and counted as CLIENT_TIMEOUT */
  requestTimeoutMs: number;
  /** pause between one client's requests */
  pauseMs?: number;
  /** sent with every request (e.g. a browser's, for the browser lane) */
  headers?: Record<string, string>;
}

export interface BoundedLoad {
  /** what has ended so far */
  readonly outcomes: LoadOutcome[];
  /** resolves with every outcome once the load has run its course (maxRequests or maxMs) */
  done: Promise<LoadOutcome[]>;
  /** stops sending and resolves with every outcome once the requests in flight have ended */
  stop(): Promise<LoadOutcome[]>;
}

/**
 * A closed-loop load that is bounded in count and in time, for fault tests: `concurrency`
 * clients send one fresh-connection GET after another, and every request ends, with a status, an
 * error, or the client's own timeout.
 */
export function startBoundedLoad(options: BoundedLoadOptions): BoundedLoad {
  const outcomes: LoadOutcome[] = [];
  const endAt = Date.now() + options.maxMs;
  let sent = 0;
  let stopped = false;
  const client = async () => {
    while (!stopped && sent < options.maxRequests && Date.now() < endAt) {
      const url = options.urls[sent++ % options.urls.length];
      const startedAt = Date.now();
      try {
        const response = await request(url, { timeoutMs: options.requestTimeoutMs, headers: options.headers });
        const worker = response.headers['x-switchyard-worker'];
        outcomes.push({ url, startedAt, ms: Date.now() - startedAt, status: response.status, worker: typeof worker === 'string' ? worker : undefined });
      } catch (error) {
        const failure = error as NodeJS.ErrnoException;
        const timedOut = failure.message?.includes('timed out');
        outcomes.push({ url, startedAt, ms: Date.now() - startedAt, error: timedOut ? CLIENT_TIMEOUT : (failure.code ?? failure.message) });
      }
      if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  };
  const done = Promise.all(Array.from({ length: options.concurrency }, client)).then(() => outcomes);
  return {
    outcomes,
    done,
    stop() {
      stopped = true;
      return done;
    },
  };
}

/** "200 x41, ECONNREFUSED x3" */
export function summarizeOutcomes(outcomes: LoadOutcome[]): string {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) {
    const key = outcome.error ?? String(outcome.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => `${key} x${count}`).join(', ');
}
