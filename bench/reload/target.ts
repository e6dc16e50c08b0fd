import type { Fleet } from '../fleet/workers.ts';
import { processTree } from '../lib/proc-stats.ts';

// What the reload bench asks of each front end: a config reload with a real change, a
// replacement of its serving process(es), and how many of its processes ended unplanned.

export interface EventOutcome {
  ok: boolean;
  /** e.g. "pid 10 -> 12", or why it failed */
  detail?: string;
  /** time spent waiting for an earlier replacement to finish before this one could begin */
  waitedMs?: number;
}

export interface ReloadableTarget {
  url: string;
  /** the reload's config is variant n % 2 of a real change (variant 0 is the one started with) */
  reload(n: number): Promise<EventOutcome>;
  /** a fresh serving process takes over; resolves once it serves (the old one may still finish) */
  replace(): Promise<EventOutcome>;
  /** resolves once no replaced process is still finishing its requests (bounded) */
  settle(): Promise<void>;
  /** processes of the proxy that ended unplanned so far (a crash; PM2 or a master would restart it) */
  restarts(): number;
  stop(): Promise<void>;
}

export interface ReloadTargetSpec {
  id: string;
  label: string;
  /** how this target is reloaded and replaced, for the table */
  mechanism: string;
  skipped?: string;
  version?: string;
  start(fleet: Fleet): Promise<ReloadableTarget>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` every intervalMs until it holds (true) or timeoutMs passed (false). */
export async function pollUntil(done: () => boolean | Promise<boolean>, intervalMs: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** Replaces `from` by `to` in text, or throws: a config variant must really change the file. */
export function alter(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`config variant: "${from}" not found`);
  return text.replace(from, to);
}

const NEW_WORKER_TIMEOUT_MS = 15_000;

/**
 * Does `act` (a reload) and waits until a process shows under `root` that was not there before:
 * the worker the reload started, so an event counts only once it has taken effect.
 */
export async function startsNewWorker(root: number, act: () => EventOutcome | Promise<EventOutcome>): Promise<EventOutcome> {
  const before = new Set(processTree(root));
  const outcome = await act();
  if (!outcome.ok) return outcome;
  let fresh: number | undefined;
  const started = await pollUntil(() => (fresh = processTree(root).find((pid) => !before.has(pid))) !== undefined, 20, NEW_WORKER_TIMEOUT_MS);
  return started ? { ok: true, detail: `new worker ${fresh}` } : { ok: false, detail: `no new worker within ${NEW_WORKER_TIMEOUT_MS} ms` };
}
