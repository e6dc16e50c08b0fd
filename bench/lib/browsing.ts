import { percentile } from './load.ts';
import { SimulatedBrowser, type PageLoad } from './browser.ts';

// Simulated users browsing a site: each user is a SimulatedBrowser (own keep-alive connections,
// own source address) that loads pages in a loop with think time between them, until a deadline.

export interface BrowsingOptions {
  origin: string;
  users: number;
  /** source address of user i (distinct client IPs for ip-hash balancers) */
  addressOf?: (user: number) => string;
  pages: string[];
  /** mean think time between page loads, ms (uniform in [0.5, 1.5] x mean) */
  thinkMs: number;
  /** stop starting page loads at this time (Date.now() ms) */
  until: number;
  /** stops starting page loads early once it returns true */
  shouldStop?: () => boolean;
  timeoutMs?: number;
  onLoad?: (load: PageLoad) => void;
}

/** A small deterministic PRNG, so that every target sees the same sequence of pages and pauses. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function browse(options: BrowsingOptions, user: number, loads: PageLoad[]): Promise<void> {
  const random = seededRandom(user + 1);
  const browser = new SimulatedBrowser({ origin: options.origin, localAddress: options.addressOf?.(user), timeoutMs: options.timeoutMs });
  try {
    await sleep(random() * options.thinkMs); // users do not arrive in lockstep
    while (Date.now() < options.until && !options.shouldStop?.()) {
      const load = await browser.loadPage(options.pages[Math.floor(random() * options.pages.length)]);
      loads.push(load);
      options.onLoad?.(load);
      if (!options.shouldStop?.()) await sleep(options.thinkMs * (0.5 + random()));
    }
  } finally {
    browser.close();
  }
}

/** Runs options.users users until options.until; resolves with every page load. */
export async function browseUntil(options: BrowsingOptions): Promise<PageLoad[]> {
  const loads: PageLoad[] = [];
  await Promise.all(Array.from({ length: options.users }, (_, user) => browse(options, user, loads)));
  return loads;
}

export interface LoadSummary {
  pages: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** up to 3 distinct error messages */
  errorSamples: string[];
}

/** Percentiles over successful loads' total time; errors counted apart. */
export function summarizeLoads(loads: PageLoad[]): LoadSummary {
  const ok = Float64Array.from(loads.filter((load) => load.ok).map((load) => load.totalMs)).sort();
  const errors = loads.filter((load) => !load.ok);
  return {
    pages: loads.length,
    errors: errors.length,
    p50Ms: percentile(ok, 50),
    p99Ms: percentile(ok, 99),
    maxMs: ok.length ? ok[ok.length - 1] : Number.NaN,
    errorSamples: [...new Set(errors.map((load) => load.error ?? 'error'))].slice(0, 3),
  };
}

export interface ArrivalOptions {
  origin: string;
  /** how many new users arrive, one every 1000/ratePerSec ms */
  count: number;
  ratePerSec: number;
  addressOf?: (user: number) => string;
  pages: string[];
  timeoutMs?: number;
  onLoad?: (load: PageLoad) => void;
}

/** New users arriving at a fixed rate, each with a fresh browser (new connections) loading one page. */
export async function arrivals(options: ArrivalOptions): Promise<PageLoad[]> {
  const loads: PageLoad[] = [];
  const started = Date.now();
  await Promise.all(
    Array.from({ length: options.count }, async (_, user) => {
      await sleep(Math.max(0, started + (user * 1000) / options.ratePerSec - Date.now()));
      const browser = new SimulatedBrowser({ origin: options.origin, localAddress: options.addressOf?.(user), timeoutMs: options.timeoutMs });
      try {
        const load = await browser.loadPage(options.pages[user % options.pages.length]);
        loads.push(load);
        options.onLoad?.(load);
      } finally {
        browser.close();
      }
    }),
  );
  return loads;
}
