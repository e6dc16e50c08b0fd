// What a whole-stack fault test runs while it breaks something: browsers paging through the
// repos and real git/hg clones through the proxy, each bounded in count and time, each verified.
// Plus the checks such a test makes of the stack afterwards: PM2 restarts, drains, the proxy's view.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withDeadline } from '../../lib/deadline.ts';
import { CLIENT_TIMEOUT, startBoundedLoad, summarizeOutcomes, type BoundedLoad, type LoadOutcome } from './bounded-load.ts';
import type { FleetStack } from './fleet-stack.ts';
import { request, waitFor } from './http.ts';
import { processesBelow, stackPorts, waitForLeftovers } from './stack-processes.ts';
import { removeDir, run } from './worker-harness.ts';

/** What Chromium sends for a navigation: the proxy puts it in the browser lane. */
export const BROWSER_HEADERS: Record<string, string> = {
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-dest': 'document',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-site': 'none',
};

/** Pages a person browsing the demo repos opens: lists, summaries, trees, a raw file (PostgreSQL's registry and the cache behind each). */
export const BROWSER_PAGES = ['/', '/demo-git', '/demo-hg', '/demo-git/tree/main/', '/demo-hg/tree/tip/src', '/demo-git/raw/main/README.md'];

export function startBrowserLoad(stack: FleetStack, options: { requestTimeoutMs: number; maxMs: number }): BoundedLoad {
  return startBoundedLoad({
    urls: BROWSER_PAGES.map((page) => stack.proxyUrl + page),
    headers: BROWSER_HEADERS,
    concurrency: 3,
    maxRequests: 20_000,
    maxMs: options.maxMs,
    requestTimeoutMs: options.requestTimeoutMs,
    pauseMs: 20,
  });
}

export interface CloneOutcome {
  vcs: 'git' | 'hg';
  startedAt: number;
  ms: number;
  /** undefined: cloned, and the clone's head is the repository's */
  error?: string;
}

export interface CloneLoop {
  readonly outcomes: CloneOutcome[];
  /** stops starting clones; resolves with every outcome once the one in flight has ended */
  stop(): Promise<CloneOutcome[]>;
}

async function gitHead(gitDir: string): Promise<string> {
  return (await run('git', ['--git-dir', gitDir, 'rev-parse', 'main'])).stdout.trim();
}

async function hgTip(repo: string): Promise<string> {
  return (await run('hg', ['--repository', repo, 'log', '-r', 'tip', '--template', '{node}'])).stdout;
}

/**
 * One git clone, then one hg clone, and so on, through the proxy (the clone lane), until stopped or
 * `maxMs` passed: each one killed past `timeoutMs` (counted as a failure) and checked against the
 * repository on disk.
 */
export function startCloneLoop(stack: FleetStack, options: { timeoutMs: number; maxMs: number; pauseMs?: number }): CloneLoop {
  const outcomes: CloneOutcome[] = [];
  const repos = stack.config.worker.repos!;
  const endAt = Date.now() + options.maxMs;
  let stopped = false;
  const loop = async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'switchyard-fault-clones-'));
    const expected = { git: await gitHead(path.join(repos, 'demo-git')), hg: await hgTip(path.join(repos, 'demo-hg')) };
    try {
      for (let n = 0; !stopped && Date.now() < endAt; n++) {
        const vcs = n % 2 === 0 ? 'git' : 'hg';
        const target = path.join(work, `${vcs}-${n}`);
        const startedAt = Date.now();
        let error: string | undefined;
        try {
          if (vcs === 'git') {
            await run('git', ['clone', '-q', '--bare', `${stack.proxyUrl}/demo-git`, target], { timeoutMs: options.timeoutMs });
            if ((await gitHead(target)) !== expected.git) error = 'git clone has another head';
          } else {
            await run('hg', ['clone', '-q', '-U', `${stack.proxyUrl}/demo-hg`, target], { timeoutMs: options.timeoutMs });
            if ((await hgTip(target)) !== expected.hg) error = 'hg clone has another tip';
          }
        } catch (failure) {
          const failed = failure as { killed?: boolean; stderr?: string; message: string };
          error = failed.killed ? `killed after ${options.timeoutMs} ms` : (failed.stderr || failed.message).trim().slice(0, 300);
        }
        outcomes.push({ vcs, startedAt, ms: Date.now() - startedAt, error });
        await removeDir(target);
        if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
      }
    } finally {
      await removeDir(work);
    }
  };
  const done = loop();
  return {
    outcomes,
    async stop() {
      stopped = true;
      await done;
      return outcomes;
    },
  };
}

/** Resolves once a git and an hg clone that started after `since` both succeeded. */
export async function clonesSucceedAfter(loop: CloneLoop, since: number, what: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    () => (['git', 'hg'] as const).every((vcs) => loop.outcomes.some((outcome) => outcome.vcs === vcs && outcome.startedAt >= since && !outcome.error)),
    `a git and an hg clone verified ${what}`,
    timeoutMs,
  );
}

/** Every PM2 process of the stack: "name#instance" -> pid and restart count. */
export async function pm2Snapshot(stack: FleetStack): Promise<Record<string, { pid: number; restarts: number; status: string }>> {
  const entries = (await withDeadline(stack.pm2.list(), 15_000, 'pm2 list')).map((process_) => [
    `${process_.name}#${process_.instance ?? 0}`,
    { pid: process_.pid, restarts: process_.restarts, status: process_.status },
  ]);
  return Object.fromEntries(entries);
}

export interface ProxyStateView {
  process?: { pid: number; generation: number };
  pools: Array<{ workers: Array<{ name: string; state: string; lastError?: string }> }>;
}

/** The proxy's GET /state (its control API). */
export async function proxyState(stack: FleetStack): Promise<ProxyStateView> {
  const response = await request(`${stack.controlUrl}/state`, { headers: { authorization: `Bearer ${process.env.SWITCHYARD_ADMIN_TOKEN}` }, timeoutMs: 5000 });
  return JSON.parse(response.body) as ProxyStateView;
}

/** A worker's state in the proxy (its control API), e.g. 'ready' or 'draining'. */
export async function proxyWorkerState(stack: FleetStack, worker: string): Promise<string | undefined> {
  const state = await proxyState(stack);
  return state.pools.flatMap((pool) => pool.workers).find((entry) => entry.name === worker)?.state;
}

/**
 * Drains `worker` through the supervisor's API and puts it back: each step must reach the proxy.
 * Returns how long the drain took to reach it.
 */
export async function drainRoundTrip(stack: FleetStack, worker: string, timeoutMs = 20_000): Promise<number> {
  const drain = await stack.api('POST', `/api/workers/${worker}/drain`);
  if (drain.status !== 202) throw new Error(`drain ${worker}: HTTP ${drain.status} ${JSON.stringify(drain.body)}`);
  const drainedAt = Date.now();
  await waitFor(async () => (await proxyWorkerState(stack, worker)) === 'draining', `${worker} draining in the proxy`, timeoutMs);
  const reached = Date.now() - drainedAt;
  const ready = await stack.api('POST', `/api/workers/${worker}/ready`);
  if (ready.status !== 200) throw new Error(`ready ${worker}: HTTP ${ready.status} ${JSON.stringify(ready.body)}`);
  await waitFor(async () => (await proxyWorkerState(stack, worker)) === 'ready', `${worker} ready in the proxy again`, timeoutMs);
  return reached;
}

/** No page waited past the client's bound, every page was a 200, every clone verified. */
export function assertLoadServed(pages: LoadOutcome[], clones: CloneOutcome[], requestTimeoutMs: number): void {
  assert.deepEqual(pages.filter((outcome) => outcome.error === CLIENT_TIMEOUT), [], `no page waits past ${requestTimeoutMs} ms`);
  assert.deepEqual(
    pages.filter((outcome) => outcome.status !== 200).map(({ url, status, error, ms }) => ({ url, status, error, ms })),
    [],
    `every page is a 200: ${summarizeOutcomes(pages)}`,
  );
  assert.deepEqual(clones.filter((clone) => clone.error), [], 'every clone verifies');
}

/** Stops the stack (as `pm2 kill`) and asserts that none of its processes is left and no port is held. */
export async function assertStackStopsClean(stack: FleetStack): Promise<void> {
  const daemonPid = Number(readFileSync(path.join(stack.pm2Home, 'pm2.pid'), 'utf8'));
  const processes = await processesBelow(daemonPid);
  await stack.stop();
  assert.deepEqual(await waitForLeftovers(processes, stackPorts(stack.config), 15_000), { processes: [], ports: [] });
}
