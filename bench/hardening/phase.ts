import { isProcessAlive } from '../../lib/process-alive.ts';
import { sleep } from '../../test/helpers/http.ts';
import { BROWSE_PAGES } from '../fleet/repos.ts';
import type { FleetTargetSpec } from '../fleet/targets.ts';
import { startFleet } from '../fleet/workers.ts';
import { SimulatedBrowser } from '../lib/browser.ts';
import { browseUntil, summarizeLoads, type LoadSummary } from '../lib/browsing.ts';
import { PeakSampler, processTree } from '../lib/proc-stats.ts';
import { ProcessWatch } from '../lib/process-watch.ts';
import type { Progress } from '../lib/progress.ts';
import { userAddress, warmUp } from '../stampede/phase.ts';
import { startAttack, type AttackReport, type AttackSettings, type PhaseName } from './attacks.ts';

// One target through every phase, back to back on the same processes: fresh workers, the target,
// warm-up; then for each phase the same browsers browse for phaseSec while the phase's attack
// runs; the attack's connections are closed at the end of its phase and the next phase starts
// once a page loads again. Nothing restarts the target: a process that ends stays gone.

export const PHASES: readonly PhaseName[] = ['calm', 'slow-body', 'fake-upgrade', 'fake-upgrade-large', 'fuzz'];

export interface HardeningSettings extends AttackSettings {
  /** in PHASES order, calm first (every ratio is to it) */
  phases: PhaseName[];
  users: number;
  thinkMs: number;
  phaseSec: number;
  pageTimeoutMs: number;
  layout: Record<string, number>;
}

export interface PhaseResult {
  phase: PhaseName;
  browsing: LoadSummary;
  attack: AttackReport | undefined;
  /** processes of the target that ended during the phase (a crash, or a child replaced) */
  restarts: number;
  proxyAlive: boolean;
  proxyRssPeakMb: number;
  /** from the attack's end until a page loaded again (NaN: not within the deadline) */
  recoverySec: number;
}

export interface StopResult {
  /** time for the target to exit after SIGTERM (bench/lib/processes.ts sends SIGKILL at 3 s) */
  proxySec: number;
  /** time for every worker to exit after SIGTERM */
  workersSec: number;
  /** processes of the target or the workers (their children included) still running after that */
  left: number;
}

export interface TargetResult {
  id: string;
  label: string;
  phases: PhaseResult[];
  stop: StopResult;
}

const MB = 1024 * 1024;
const RECOVERY_DEADLINE_MS = 30_000;
const WORKERS_STOP_DEADLINE_MS = 20_000;
/** the attack starts this long before the browsers, so that they meet it in full */
const ATTACK_LEAD_MS = 1000;

/** Seconds until one page loads (fresh connections, a new address each try), or NaN after the deadline. */
async function recovery(origin: string): Promise<number> {
  const started = performance.now();
  for (let attempt = 0; performance.now() - started < RECOVERY_DEADLINE_MS; attempt++) {
    const browser = new SimulatedBrowser({ origin, localAddress: `127.11.0.${1 + (attempt % 250)}`, timeoutMs: 5000 });
    const load = await browser.loadPage(BROWSE_PAGES[0]);
    browser.close();
    if (load.ok) return (performance.now() - started) / 1000;
    await sleep(250);
  }
  return Number.NaN;
}

async function runPhase(phase: PhaseName, origin: string, watch: ProcessWatch, proxyPid: number | undefined, settings: HardeningSettings, progress: Progress): Promise<PhaseResult> {
  const sampler = new PeakSampler({ proxy: proxyPid === undefined ? [] : [proxyPid] }).start();
  const attack = startAttack(phase, Number(new URL(origin).port), settings);
  if (attack) await sleep(ATTACK_LEAD_MS);
  let pages = 0;
  let errors = 0;
  const ticker = setInterval(() => progress.update(`${phase}: pages ${pages}, errors ${errors}`), 500);
  const loads = await browseUntil({
    origin,
    users: settings.users,
    addressOf: userAddress,
    pages: BROWSE_PAGES,
    thinkMs: settings.thinkMs,
    until: Date.now() + settings.phaseSec * 1000,
    timeoutMs: settings.pageTimeoutMs,
    onLoad: (load) => {
      pages++;
      if (!load.ok) errors++;
    },
  });
  clearInterval(ticker);
  const report = await attack?.stop();
  const peaks = sampler.stop();
  const restarts = watch.look().length;
  return {
    phase,
    browsing: summarizeLoads(loads),
    attack: report,
    restarts,
    proxyAlive: watch.rootAlive,
    proxyRssPeakMb: peaks.proxy.peakRss / MB,
    recoverySec: attack ? await recovery(origin) : 0,
  };
}

/** Runs stop() for at most deadlineMs; then kills whatever of `pids` still runs. Returns the seconds it took and how many were left. */
async function stopWithin(stop: () => Promise<void>, pids: number[], deadlineMs: number): Promise<{ seconds: number; left: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const stopping = stop();
  await Promise.race([stopping, new Promise((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  const left = pids.filter(isProcessAlive);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // it ended meanwhile
    }
  }
  await stopping;
  return { seconds, left: left.length };
}

export async function runTarget(spec: FleetTargetSpec, repos: string, settings: HardeningSettings, progress: Progress): Promise<TargetResult> {
  progress.start(spec.label);
  const fleet = await startFleet(settings.layout, repos);
  const target = await spec.start(fleet).catch(async (error: unknown) => {
    await fleet.stop();
    throw error;
  });
  const phases: PhaseResult[] = [];
  let stopped: StopResult | undefined;
  try {
    await warmUp(target.url, settings.users);
    const watch = new ProcessWatch(target.pid);
    for (const phase of settings.phases) {
      const result = await runPhase(phase, target.url, watch, target.pid, settings, progress);
      phases.push(result);
      progress.note(
        `    ${phase}: pages ${result.browsing.pages}, p99 ${Math.round(result.browsing.p99Ms)} ms, errors ${result.browsing.errors}` +
          `${result.restarts ? `, ${result.restarts} processes ended` : ''}, proxy RSS peak ${Math.round(result.proxyRssPeakMb)} MB`,
      );
    }
    const workerPids = fleet.pids().flatMap((pid) => processTree(pid));
    const proxy = await stopWithin(() => target.stop(), watch.pids, 10_000);
    const workers = await stopWithin(() => fleet.stop(), workerPids, WORKERS_STOP_DEADLINE_MS);
    stopped = { proxySec: proxy.seconds, workersSec: workers.seconds, left: proxy.left + workers.left };
    progress.done(`stopped: proxy in ${proxy.seconds.toFixed(1)} s, workers in ${workers.seconds.toFixed(1)} s, ${stopped.left} processes left`);
    return { id: spec.id, label: spec.label, phases, stop: stopped };
  } finally {
    if (!stopped) {
      await target.stop();
      await fleet.stop();
    }
  }
}
