import { BROWSE_PAGES } from '../fleet/repos.ts';
import type { FleetTargetSpec } from '../fleet/targets.ts';
import { startFleet } from '../fleet/workers.ts';
import { arrivals, summarizeLoads, type LoadSummary } from '../lib/browsing.ts';
import { PeakSampler } from '../lib/proc-stats.ts';
import type { Progress } from '../lib/progress.ts';
import { hogAddress, openHog } from './hoggers.ts';

// One target: fresh workers, the target, warm-up; then the hog clients open their connections
// and idle; then new users arrive at a fixed rate and load a page each, while the proxy's and
// the workers' memory and descriptors are sampled.

export interface HogSettings {
  clients: number;
  perClient: number;
  newUsers: number;
  arrivalsPerSec: number;
  settleSec: number;
  pageTimeoutMs: number;
  layout: Record<string, number>;
}

export interface HogResult {
  label: string;
  hogOpened: number;
  hogFailed: number;
  /** hog connections still open when the first new user arrived and when the last finished */
  openAtStart: number;
  openAtEnd: number;
  users: LoadSummary;
  proxyRssBeforeMb: number;
  proxyRssPeakMb: number;
  proxyFdsBefore: number;
  proxyFdsPeak: number;
  workersFdsPeak: number;
  workersRssPeakMb: number;
}

const MB = 1024 * 1024;
const newUserAddress = (user: number) => `127.40.${user % 256}.${1 + Math.floor(user / 256)}`;

export async function runHogPhase(spec: FleetTargetSpec, repos: string, settings: HogSettings, progress: Progress): Promise<HogResult> {
  progress.start(spec.label);
  const fleet = await startFleet(settings.layout, repos);
  const target = await spec.start(fleet).catch(async (error: unknown) => {
    await fleet.stop();
    throw error;
  });
  try {
    // warm every worker's page cache: each page 8 times in a row (so round-robin reaches every
    // worker with it), from several addresses (so ip-hash balancers do too)
    const warmPages = BROWSE_PAGES.flatMap((page) => Array<string>(8).fill(page));
    await arrivals({ origin: target.url, count: warmPages.length, ratePerSec: 20, pages: warmPages, addressOf: hogAddress, timeoutMs: 60_000 });
    const groups = { proxy: target.pid === undefined ? [] : [target.pid], workers: fleet.pids() };
    const before = new PeakSampler(groups).sample();
    const proxyRssBeforeMb = before.proxy.lastRss / MB;
    const proxyFdsBefore = before.proxy.lastFds;
    progress.update(`opening ${settings.clients} x ${settings.perClient} connections`);
    const hog = await openHog(target.url, settings.clients, settings.perClient, BROWSE_PAGES[1]);
    try {
      await new Promise((resolve) => setTimeout(resolve, settings.settleSec * 1000));
      const sampler = new PeakSampler(groups).start();
      const openAtStart = hog.open();
      let served = 0;
      let errors = 0;
      const ticker = setInterval(() => progress.update(`idle connections open ${hog.open()}, new users served ${served}, errors ${errors}`), 500);
      const loads = await arrivals({
        origin: target.url,
        count: settings.newUsers,
        ratePerSec: settings.arrivalsPerSec,
        addressOf: newUserAddress,
        pages: BROWSE_PAGES,
        timeoutMs: settings.pageTimeoutMs,
        onLoad: (load) => (load.ok ? served++ : errors++),
      });
      clearInterval(ticker);
      const peaks = sampler.stop();
      const users = summarizeLoads(loads);
      const result: HogResult = {
        label: spec.label,
        hogOpened: hog.opened,
        hogFailed: hog.failed,
        openAtStart,
        openAtEnd: hog.open(),
        users,
        proxyRssBeforeMb,
        proxyRssPeakMb: peaks.proxy.peakRss / MB,
        proxyFdsBefore,
        proxyFdsPeak: peaks.proxy.peakFds,
        workersFdsPeak: peaks.workers.peakFds,
        workersRssPeakMb: peaks.workers.peakRss / MB,
      };
      progress.done(`idle open ${openAtStart} -> ${result.openAtEnd}, users ${users.pages - users.errors}/${settings.newUsers} served, p99 ${Math.round(users.p99Ms)} ms`);
      return result;
    } finally {
      hog.close();
    }
  } finally {
    await target.stop();
    await fleet.stop();
  }
}
