import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deepMerge } from '../../proxy/testing.ts';
import { switchyardTarget } from '../fleet/targets.ts';
import type { Fleet } from '../fleet/workers.ts';
import { runClone } from '../lib/clones.ts';
import { cpuTimeMs, cpuWithChildrenMs } from '../lib/cpu.ts';
import type { Target } from '../lib/target.ts';
import { STAMPEDE_SWITCHYARD, STAMPEDE_SWITCHYARD_UNSHARED } from '../stampede/switchyard.ts';
import { kindOf, WARM_REPOS, type MeasuredRepo } from './repos.ts';

// What one clone costs each component: a fresh Switchyard process (clone sharing on or off) in
// front of the fleet's clone workers, warmed up on a repo not measured, then `clones` clones of
// one repo, `concurrency` at a time, by the real git/hg clients from 127.0.0.1 (all alike, as CI
// machines cloning one commit are). CPU is read from /proc/<pid>/stat of the proxy and of the clone
// workers with their git/hg children; bytes and how each clone request was answered from the
// proxy's JSON access log.

export interface CloneCase {
  repo: MeasuredRepo;
  sharing: boolean;
  concurrency: number;
  clones: number;
}

export interface CloneCost extends CloneCase {
  ok: number;
  failures: string[];
  /** from the first clone's start until the last one ended */
  wallSec: number;
  meanCloneSec: number;
  proxyCpuMs: number;
  /** the clone pool's workers with their git/hg children */
  workerCpuMs: number;
  /** response body bytes the proxy sent for the repo's requests */
  bytes: number;
  /** the repo's clone-protocol requests by clone sharing's answer (miss: a worker ran git/hg for it) */
  answers: Record<string, number>;
}

const CLONE_DEADLINE_MS = 180_000;

interface AccessLine {
  url: string;
  bytes: number;
  lane: string | null;
  cloneCache: string | null;
}

async function accessLines(file: string): Promise<AccessLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AccessLine);
}

const ofRepo = (repo: string) => (line: AccessLine) => line.url.startsWith(`/${repo}/`) || line.url.startsWith(`/${repo}?`);

async function startSwitchyard(fleet: Fleet, sharing: boolean, accessLog: string): Promise<Target> {
  const base = sharing ? STAMPEDE_SWITCHYARD : STAMPEDE_SWITCHYARD_UNSHARED;
  const setup = { ...base, config: deepMerge(base.config, { proxy: { accessLog: { path: accessLog, format: 'json' } } }) };
  return switchyardTarget(sharing ? 'Switchyard' : 'Switchyard, clone sharing off', setup).start(fleet);
}

/** `count` clones of url, `concurrency` at a time; each lane starts its next clone when its last one ended. */
async function cloneLoad(url: string, kind: 'git' | 'hg', count: number, concurrency: number, scratch: string) {
  let next = 0;
  const results: Awaited<ReturnType<typeof runClone>>[] = [];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const n = next++;
        results.push(await runClone(kind, url, path.join(scratch, `clone-${n}`), CLONE_DEADLINE_MS));
      }
    }),
  );
  return results;
}

export async function measureClones(fleet: Fleet, c: CloneCase): Promise<CloneCost> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'switchyard-bench-sizing-'));
  const accessLog = path.join(scratch, 'access.log');
  const target = await startSwitchyard(fleet, c.sharing, accessLog);
  const kind = kindOf(c.repo);
  const cloneWorkers = fleet.workers.filter((worker) => worker.pool === 'clone');
  const workerCpu = () => cloneWorkers.reduce((sum, worker) => sum + cpuWithChildrenMs(worker.pid), 0);
  let stopped = false;
  const stop = async () => {
    if (!stopped) await target.stop();
    stopped = true;
  };
  try {
    const warm = await runClone(kind, `${target.url}/${WARM_REPOS[kind]}`, path.join(scratch, 'warm'), CLONE_DEADLINE_MS);
    if (!warm.ok) throw new Error(`warm-up clone of ${WARM_REPOS[kind]} failed: ${warm.error}`);
    const [proxyBefore, workersBefore] = [cpuTimeMs(target.pid), workerCpu()];
    const started = performance.now();
    const results = await cloneLoad(`${target.url}/${c.repo}`, kind, c.clones, c.concurrency, scratch);
    const wallSec = (performance.now() - started) / 1000;
    const [proxyCpuMs, workerCpuMs] = [cpuTimeMs(target.pid) - proxyBefore, workerCpu() - workersBefore];
    const ok = results.filter((result) => result.ok);
    await stop(); // the proxy writes its access log in the background: complete once it has stopped
    const lines = (await accessLines(accessLog)).filter(ofRepo(c.repo));
    const answers: Record<string, number> = {};
    for (const line of lines) if (line.cloneCache) answers[line.cloneCache] = (answers[line.cloneCache] ?? 0) + 1;
    return {
      ...c,
      ok: ok.length,
      failures: results.filter((result) => !result.ok).map((result) => result.error ?? 'failed'),
      wallSec,
      meanCloneSec: ok.reduce((sum, result) => sum + result.seconds, 0) / Math.max(1, ok.length),
      proxyCpuMs,
      workerCpuMs,
      bytes: lines.reduce((sum, line) => sum + line.bytes, 0),
      answers,
    };
  } finally {
    await stop();
    await rm(scratch, { recursive: true, force: true });
  }
}
