import { sleep } from '../../test/helpers/http.ts';
import { BROWSE_PAGES } from '../fleet/repos.ts';
import type { FleetTargetSpec } from '../fleet/targets.ts';
import { startFleet } from '../fleet/workers.ts';
import { SimulatedBrowser } from '../lib/browser.ts';
import { browseUntil, summarizeLoads, type LoadSummary } from '../lib/browsing.ts';
import { PeakSampler } from '../lib/proc-stats.ts';
import type { Progress } from '../lib/progress.ts';
import { warmUp } from '../stampede/phase.ts';
import { CrawlOrder } from './crawler.ts';
import { browserAddress, startParties, type PartyReports, type PartySettings, type PhaseName } from './parties.ts';

// One target through its phases, back to back on the same processes: fresh workers, the target,
// warm-up; then in each phase the same browsers browse for phaseSec while the phase's parties run
// (they start 1 s before the browsers and are stopped at the phase's end); the next phase starts
// once a page loads again.

export interface GreedySettings extends PartySettings {
  /** calm first: every ratio is to it */
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
  parties: PartyReports;
  proxyRssPeakMb: number;
}

export interface TargetResult {
  id: string;
  label: string;
  phases: PhaseResult[];
}

const MB = 1024 * 1024;
/** the parties start this long before the browsers, so that the browsers meet them in full */
const PARTIES_LEAD_MS = 1000;
/** after a phase with parties, one page must load (within this) before the next phase */
const SETTLE_TIMEOUT_MS = 30_000;

async function runPhase(phase: PhaseName, origin: string, proxyPid: number | undefined, settings: GreedySettings, crawl: CrawlOrder, progress: Progress): Promise<PhaseResult> {
  const sampler = new PeakSampler({ proxy: proxyPid === undefined ? [] : [proxyPid] }).start();
  const parties = startParties(phase, new URL(origin), settings, crawl);
  if (phase !== 'calm') await sleep(PARTIES_LEAD_MS);
  let pages = 0;
  let errors = 0;
  const ticker = setInterval(() => progress.update(`${phase}: pages ${pages}, errors ${errors}`), 500);
  const loads = await browseUntil({
    origin,
    users: settings.users,
    addressOf: browserAddress,
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
  const reports = await parties.stop();
  const peaks = sampler.stop();
  if (phase !== 'calm') {
    // a fresh browser from an address no phase uses, so no limit or queue share of a browser's is spent on it
    const settle = new SimulatedBrowser({ origin, localAddress: '127.0.5.1', timeoutMs: SETTLE_TIMEOUT_MS });
    await settle.loadPage(BROWSE_PAGES[0]);
    settle.close();
  }
  return { phase, browsing: summarizeLoads(loads), parties: reports, proxyRssPeakMb: peaks.proxy.peakRss / MB };
}

/** `crawlUrls`: the site's URLs in the order the crawler asks for them (crawler.ts discoverUrls). */
export async function runTarget(spec: FleetTargetSpec, repos: string, settings: GreedySettings, crawlUrls: string[], progress: Progress): Promise<TargetResult> {
  progress.start(spec.label);
  const fleet = await startFleet(settings.layout, repos);
  const target = await spec.start(fleet).catch(async (error: unknown) => {
    await fleet.stop();
    throw error;
  });
  try {
    await warmUp(target.url, settings.users);
    const crawl = new CrawlOrder(crawlUrls);
    const phases: PhaseResult[] = [];
    for (const phase of settings.phases) {
      const result = await runPhase(phase, target.url, target.pid, settings, crawl, progress);
      phases.push(result);
      const { greedy, slow, crawler } = result.parties;
      const parties = [greedy && `greedy ${greedy.outcomes['200']?.count ?? 0} served`, slow && `slow readers ${slow.connections} connections`, crawler && `crawler ${crawler.outcomes['200']?.count ?? 0} served`];
      progress.note(
        `    ${phase}: pages ${result.browsing.pages}, p99 ${Math.round(result.browsing.p99Ms)} ms, errors ${result.browsing.errors}` +
          `${parties.filter(Boolean).map((text) => `, ${text}`).join('')}, proxy RSS peak ${Math.round(result.proxyRssPeakMb)} MB`,
      );
    }
    progress.done();
    return { id: spec.id, label: spec.label, phases };
  } finally {
    await target.stop();
    await fleet.stop();
  }
}
