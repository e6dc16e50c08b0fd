import { BROWSE_PAGES } from '../fleet/repos.ts';
import type { FleetTargetSpec } from '../fleet/targets.ts';
import { startFleet, type Fleet } from '../fleet/workers.ts';
import { SimulatedBrowser } from '../lib/browser.ts';
import { browseUntil, summarizeLoads, type BrowsingOptions, type LoadSummary } from '../lib/browsing.ts';
import { cpuWithChildrenMs } from '../lib/cpu.ts';
import { PeakSampler } from '../lib/proc-stats.ts';
import type { Progress } from '../lib/progress.ts';
import { startBotRelays, stampede, type BotPlan, type BotResult } from './bots.ts';

// One target, one go: fresh workers, the target in front of them, warm-up, then the users browse
// for browseSec while (with a stampede) every bot starts its clone at the same moment.

/** The stampede's load: browsing users, CI bots and their links, timeouts, the fleet (also the reload bench's). */
export interface StampedeLoad extends BotPlan {
  users: number;
  thinkMs: number;
  cloneDeadlineSec: number;
  pageTimeoutMs: number;
  layout: Record<string, number>;
}

export interface StampedeSettings extends StampedeLoad {
  browseSec: number;
  /** the stampede starts this long after the users */
  stampedeAtSec: number;
}

/** The load from its command-line flags (bench/fleet/doc.ts positiveFlags). */
export function stampedeLoad(n: Record<'users' | 'bots' | 'slow' | 'slow-kbps' | 'hg-every' | 'think-ms' | 'clone-deadline' | 'page-timeout-ms', number>): StampedeLoad {
  return {
    users: n.users,
    bots: n.bots,
    slow: Math.min(n.slow, n.bots),
    slowBytesPerSec: n['slow-kbps'] * 1024,
    hgEvery: Math.max(1, n['hg-every']),
    thinkMs: n['think-ms'],
    cloneDeadlineSec: n['clone-deadline'],
    pageTimeoutMs: n['page-timeout-ms'],
    layout: { web: 2, clone: 3 },
  };
}

export interface PhaseResult {
  /** the target's id */
  id: string;
  label: string;
  stampede: boolean;
  browsing: LoadSummary;
  clones: BotResult[];
  /** from the stampede's start until the last clone finished (or the deadline) */
  clonesWallSec: number;
  proxyPeakRssMb: number;
  workersPeakRssMb: number;
  /** CPU seconds of every worker and its git/hg children from the stampede's start until the last clone ended (NaN without one) */
  workerCpuSec: number;
  /** the same for the clone pool's workers alone */
  cloneWorkerCpuSec: number;
}

/** CPU seconds the workers (with their children) of `pools` (all: every pool) cost so far. */
function workersCpuSec(fleet: Fleet, pools?: string[]): number {
  const workers = fleet.workers.filter((worker) => !pools || pools.includes(worker.pool));
  return workers.reduce((sum, worker) => sum + cpuWithChildrenMs(worker.pid), 0) / 1000;
}

export const userAddress = (user: number) => `127.10.${user % 256}.${1 + Math.floor(user / 256)}`;
const MB = 1024 * 1024;

/** Every user loads every page once from its own address, so each worker that will serve a page has it cached. */
export async function warmUp(origin: string, users: number): Promise<void> {
  await Promise.all(
    Array.from({ length: users }, async (_, user) => {
      const browser = new SimulatedBrowser({ origin, localAddress: userAddress(user), timeoutMs: 60_000 });
      try {
        for (const page of BROWSE_PAGES) await browser.loadPage(page);
      } finally {
        browser.close();
      }
    }),
  );
}

/** The load's users browsing the repo pages at origin, each from its own address. */
export const browseRepoPages = (origin: string, load: StampedeLoad, options: Pick<BrowsingOptions, 'until' | 'shouldStop' | 'onLoad'>) =>
  browseUntil({ origin, users: load.users, addressOf: userAddress, pages: BROWSE_PAGES, thinkMs: load.thinkMs, timeoutMs: load.pageTimeoutMs, ...options });

type BotRelays = Awaited<ReturnType<typeof startBotRelays>>;

/**
 * Fresh workers, the target `start` puts in front of them, warmed up, and with `bots` the bots'
 * relays to it; runs `measure` on them, then stops them all.
 */
export async function onWarmTarget<T extends { url: string; stop(): Promise<void> }, R>(
  load: StampedeLoad,
  repos: string,
  start: (fleet: Fleet) => Promise<T>,
  bots: boolean,
  measure: (target: T, fleet: Fleet, relays: BotRelays | undefined) => Promise<R>,
): Promise<R> {
  const fleet = await startFleet(load.layout, repos);
  const target = await start(fleet).catch(async (error: unknown) => {
    await fleet.stop();
    throw error;
  });
  let relays: BotRelays | undefined;
  try {
    await warmUp(target.url, load.users);
    if (bots) relays = await startBotRelays(load, new URL(target.url).host);
    return await measure(target, fleet, relays);
  } finally {
    await relays?.stop();
    await target.stop();
    await fleet.stop();
  }
}

export async function runPhase(spec: FleetTargetSpec, repos: string, settings: StampedeSettings, withStampede: boolean, progress: Progress): Promise<PhaseResult> {
  const label = `${spec.label}${withStampede ? '' : ', no stampede'}`;
  progress.start(label);
  return onWarmTarget(settings, repos, (fleet) => spec.start(fleet), withStampede, async (target, fleet, relays) => {
    const sampler = new PeakSampler({ proxy: target.pid === undefined ? [] : [target.pid], workers: fleet.pids() }).start();
    let pages = 0;
    let errors = 0;
    const clones: BotResult[] = [];
    const ticker = setInterval(() => {
      const cloneInfo = withStampede ? `, clones ${clones.filter((c) => c.ok).length}/${settings.bots} done, ${clones.filter((c) => !c.ok).length} failed` : '';
      progress.update(`pages ${pages}, errors ${errors}${cloneInfo}`);
    }, 500);
    const startedAt = Date.now();
    const browsing = browseRepoPages(target.url, settings, {
      until: startedAt + settings.browseSec * 1000,
      onLoad: (load) => {
        pages++;
        if (!load.ok) errors++;
      },
    });
    let clonesWallSec = Number.NaN;
    let workerCpuSec = Number.NaN;
    let cloneWorkerCpuSec = Number.NaN;
    const cloning = withStampede
      ? new Promise((resolve) => setTimeout(resolve, settings.stampedeAtSec * 1000)).then(async () => {
          const cpuBefore = [workersCpuSec(fleet), workersCpuSec(fleet, ['clone'])];
          const begin = performance.now();
          const results = await stampede(settings, relays!.ports, settings.cloneDeadlineSec * 1000, (result) => clones.push(result));
          clonesWallSec = (performance.now() - begin) / 1000;
          workerCpuSec = workersCpuSec(fleet) - cpuBefore[0];
          cloneWorkerCpuSec = workersCpuSec(fleet, ['clone']) - cpuBefore[1];
          return results;
        })
      : Promise.resolve([]);
    const [loads] = await Promise.all([browsing, cloning]);
    clearInterval(ticker);
    const peaks = sampler.stop();
    const result: PhaseResult = {
      id: spec.id,
      label,
      stampede: withStampede,
      browsing: summarizeLoads(loads),
      clones,
      clonesWallSec,
      proxyPeakRssMb: peaks.proxy.peakRss / MB,
      workersPeakRssMb: peaks.workers.peakRss / MB,
      workerCpuSec,
      cloneWorkerCpuSec,
    };
    const failed = clones.filter((clone) => !clone.ok).length;
    progress.done(
      `pages ${result.browsing.pages}, p99 ${Math.round(result.browsing.p99Ms)} ms, errors ${result.browsing.errors}` +
        (withStampede ? `, clones ${clones.length - failed}/${settings.bots} in ${clonesWallSec.toFixed(1)} s` : ''),
    );
    return result;
  });
}
