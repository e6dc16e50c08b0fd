// Greedy clients: no client, fast or slow, can monopolise a pool (issue 18). The same browsing load
// first alone (calm), then sharing the fleet with one greedy client (50 expensive requests at a
// time, in a loop), 10 slow readers and one crawler (10 new URLs a second), on the same processes;
// Switchyard (its defaults) against nginx with limit_req/limit_conn and HAProxy with a stick-table
// rate limit in front of the same reference workers, in one run. Goal: browser p99 within 1.5x of
// calm, no browser error.
//   npm run bench -- greedy-clients [--users 30] [--think-ms 2000] [--phase-seconds 30] [--greedy 50]
//     [--slow-readers 10] [--slow-read-bps 4096] [--slow-path /huge-git/raw/main/blobs/part-0000.bin]
//     [--crawler-rate 10] [--phases greedy,slow-readers,crawler,together]
//     [--targets switchyard,nginx-limit,haproxy-limit,nginx-rr,haproxy-rr] [--no-doc]
// Prints the table and rewrites the "## Greedy clients: fair share (bench/greedy-clients)" section of docs/benchmarks.md.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../lib/config.ts';
import { imageLink, IMG_DIR, loadAverage, machineInfo, machineLine, positiveFlags, writeDocSection } from './fleet/doc.ts';
import { baselineTargets, switchyardTarget, type FleetRateLimits, type FleetTargetSpec } from './fleet/targets.ts';
import { startFleet } from './fleet/workers.ts';
import { CRAWLER_UA, discoverUrls, MAX_IN_FLIGHT } from './greedy-clients/crawler.ts';
import { GREEDY_PATHS } from './greedy-clients/greedy.ts';
import { CRAWLER_ADDRESS, GREEDY_ADDRESS, joins, MAX_USERS, PHASES, type PhaseName } from './greedy-clients/parties.ts';
import { runTarget, type GreedySettings, type TargetResult } from './greedy-clients/phase.ts';
import { GOAL_RATIO, greedyTable, greedyVerdict } from './greedy-clients/report.ts';
import { HUGE_FILE, HUGE_FILE_LABEL, hardeningRepos } from './hardening/repos.ts';
import { writeBarChart } from './lib/chart.ts';
import { installCleanup, stopAll } from './lib/processes.ts';
import { Progress } from './lib/progress.ts';

const HEADING = '## Greedy clients: fair share (bench/greedy-clients)';
const DEFAULT_TARGETS = ['switchyard', 'nginx-limit', 'haproxy-limit'];

/**
 * The limits an operator would set from the documentation: nginx's "Rate Limiting with NGINX"
 * (10 r/s with a burst of 20, nodelay) and limit_conn's per-address connections; HAProxy's
 * stick-table example (http_req_rate over 10 s, conn_cur) at the same 10 requests a second and
 * 10 at once. A browser asks for about one page a second at most (its subresources are static
 * files, outside the limits); the crawler's 10 a second is at the edge, as a search engine's
 * usually is.
 */
const LIMITS: FleetRateLimits = {
  nginx: { ratePerSec: 10, burst: 20, connections: 10, status: 429 },
  haproxy: { requests: 100, windowSec: 10, concurrent: 10, status: 429 },
};

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: 'string', default: '30' },
      'think-ms': { type: 'string', default: '2000' },
      'phase-seconds': { type: 'string', default: '30' },
      'page-timeout-ms': { type: 'string', default: '15000' },
      greedy: { type: 'string', default: '50' },
      'slow-readers': { type: 'string', default: '10' },
      'slow-read-bps': { type: 'string', default: '4096' },
      'slow-path': { type: 'string', default: HUGE_FILE },
      'crawler-rate': { type: 'string', default: '10' },
      'repo-mb': { type: 'string', default: '8' },
      phases: { type: 'string', default: 'together' },
      targets: { type: 'string' },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  const n = positiveFlags(
    values,
    ['users', 'think-ms', 'phase-seconds', 'page-timeout-ms', 'greedy', 'slow-readers', 'slow-read-bps', 'repo-mb'] as const,
    ['crawler-rate'] as const,
  );
  if (n.users < 1 || n.users > MAX_USERS) throw new Error(`--users: 1 to ${MAX_USERS} (one address each in 127.0.1.0/24)`);
  if (n['slow-readers'] > 254) throw new Error('--slow-readers: at most 254 (one address each in 127.0.3.0/24)');
  if (!(n['crawler-rate'] > 0)) throw new Error('--crawler-rate: above 0');
  const asked = values.phases.split(',');
  const unknown = asked.filter((phase) => !PHASES.includes(phase as PhaseName));
  if (unknown.length) throw new Error(`--phases: unknown ${unknown.join(', ')}; of ${PHASES.join(', ')}`);
  const settings: GreedySettings = {
    // calm always runs first: every other phase is measured against it
    phases: PHASES.filter((phase) => phase === 'calm' || asked.includes(phase)),
    users: n.users,
    thinkMs: n['think-ms'],
    phaseSec: n['phase-seconds'],
    pageTimeoutMs: n['page-timeout-ms'],
    greedyParallel: Math.max(1, n.greedy),
    slowReaders: n['slow-readers'],
    slowReadBytesPerSec: n['slow-read-bps'],
    slowReadPath: values['slow-path'],
    crawlerRatePerSec: n['crawler-rate'],
    layout: { web: 2, clone: 3 },
  };
  return { settings, repoMb: n['repo-mb'], only: values.targets?.split(',') ?? DEFAULT_TARGETS, writeDoc: !values['no-doc'] };
}

/** The URLs the crawler asks for on every target, found on a worker of their own: as many as its phases can take. */
async function crawlUrls(repos: string, settings: GreedySettings): Promise<string[]> {
  const crawled = settings.phases.filter((phase) => joins(phase, 'crawler')).length;
  const fleet = await startFleet({ web: 1 }, repos);
  try {
    return await discoverUrls(new URL(`http://${fleet.workers[0].address}`), Math.ceil(settings.crawlerRatePerSec * (settings.phaseSec + 2) * crawled) + 1);
  } finally {
    await fleet.stop();
  }
}

export async function main(argv: string[]): Promise<void> {
  const { settings, repoMb, only, writeDoc } = parse(argv);
  installCleanup();
  const machine = machineInfo();
  const date = new Date();
  try {
    const repos = await hardeningRepos(repoMb, () => process.stderr.write(`generating ${repoMb} MB git and hg repositories...\n`));
    const specs: FleetTargetSpec[] = [
      // as the other fleet scenarios run it: browser and page lanes on the web workers, clones on
      // the clone workers, and bots (the crawler names itself one) there too, since this fleet has
      // no bot workers: the product keeps bots off the browsers' workers; a data directory of its
      // own, not the checkout's var/
      switchyardTarget('Switchyard (defaults)', {
        pools: { web: ['web'], clone: ['clone'] },
        config: { data: path.join(PROJECT_ROOT, '.bench-tmp', 'greedy-clients-proxy-data'), proxy: {}, lanes: { bot: { pool: 'clone' } } },
      }),
      ...(await baselineTargets((pkg) => process.stderr.write(`installing ${pkg} with apt-get...\n`), LIMITS)),
    ].filter((spec) => only.includes(spec.id));
    for (const spec of specs.filter((s) => s.skipped)) process.stderr.write(`skipping ${spec.label}: ${spec.skipped}\n`);
    const runnable = specs.filter((spec) => !spec.skipped);
    const urls = await crawlUrls(repos, settings);
    const progress = new Progress(runnable.length);
    progress.note(`the crawler's URLs: ${urls.length} found`);
    const results: TargetResult[] = [];
    for (const spec of runnable) results.push(await runTarget(spec, repos, settings, urls, progress));

    const table = greedyTable(results);
    const verdict = greedyVerdict(results);
    console.log(`\n${table}\n`);
    for (const line of verdict) console.log(`- ${line}`);
    if (writeDoc) {
      const chart = path.join(IMG_DIR, 'greedy-clients.svg');
      const rows = results.flatMap((target) => target.phases.map((phase) => ({ target, phase })));
      writeBarChart(chart, {
        title: 'Browser page load, alone (calm) and beside the greedy clients',
        unit: 'ms',
        log: true,
        rows: rows.map(({ target, phase }) => `${target.label.split(' (')[0]}: ${phase.phase} (${phase.browsing.errors} errors)`),
        series: [
          { name: 'p50', color: '#7aa6d8', values: rows.map(({ phase }) => phase.browsing.p50Ms) },
          { name: 'p99', color: '#1f4e8c', values: rows.map(({ phase }) => phase.browsing.p99Ms) },
        ],
      });
      writeDocSection(HEADING, markdown(settings, urls.length, table, verdict, imageLink('browser page load p50/p99 per target and phase', chart), machineLine(machine, specs, loadAverage()), date, argv));
      console.log(`\nwrote ${HEADING.slice(3)} in docs/benchmarks.md`);
    }
  } finally {
    await stopAll();
  }
}

function markdown(s: GreedySettings, crawlUrlCount: number, table: string, verdict: string[], chart: string, machine: string, date: Date, argv: string[]): string {
  const { nginx, haproxy } = LIMITS;
  const slowFile = s.slowReadPath === HUGE_FILE ? `\`${HUGE_FILE}\` (${HUGE_FILE_LABEL})` : `\`${s.slowReadPath}\``;
  return `Generated by \`npm run bench -- greedy-clients${argv.length ? ` ${argv.join(' ')}` : ''}\` (\`bench/greedy-clients.ts\`) on ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC. Re-running replaces this section.

${machine}

**Load.** ${s.users} simulated browsers (as in the hardening scenario: a repo page and its subresources over up to 6 keep-alive connections,
${s.thinkMs} ms mean think time, an error on any non-200 or after ${s.pageTimeoutMs / 1000} s), each from an address of its own (127.0.1.1 to 127.0.1.${s.users}),
browse for ${s.phaseSec} s alone (**calm**), then for ${s.phaseSec} s in each phase below on the same processes; a phase's parties start 1 s before
its browsing and stop at its end, and the next phase starts once a page loads again. Every party has its own addresses, none the
proxies' trusted 127.0.0.1, so a proxy that shares per client address sees it apart from the browsers:
- **greedy** (${GREEDY_ADDRESS}): ${s.greedyParallel} keep-alive connections, each sending its next request as soon as the last is answered, round the
  most expensive uncached responses the reference worker has (${GREEDY_PATHS.map((p) => `\`${p}\``).join(', ')}: \`hg cat\` of 4 MB and 400 KB,
  0.2 to 0.3 s of a worker each, and 4 MB from git), read as fast as they come, with a browser's navigation headers (so in Switchyard
  it shares the browsers' lane: nothing but its appetite tells it apart). A refused request (429, 503) or an error waits 250 ms.
- **slow readers** (${s.slowReaders}, 127.0.3.1 to 127.0.3.${s.slowReaders}, one address each): each keeps one connection asking for ${slowFile},
  the odd ones reading ${s.slowReadBytesPerSec} bytes a second, the even ones nothing after the first chunk; one the server ends is reopened 1 s later.
  (Node cannot shrink a socket's receive buffer to the issue's 4 KiB; a client that did not read the 4 MB \`data/large.txt\` did not hold a
  worker here, loopback's buffers took it all, so the readers ask for a file larger than those buffers and a proxy's window.)
- **crawler** (${CRAWLER_ADDRESS}): \`${CRAWLER_UA}\`, at most ${s.crawlerRatePerSec} requests a second (${MAX_IN_FLIGHT} at once), each a URL it has not asked
  that target before (${crawlUrlCount} URLs, found before the run breadth first from the repository list over every same-origin link but static
  files and raw downloads, on a worker of their own: trees and files at every commit, pages the target's workers have not rendered yet;
  it starts over when it has asked for all). It keeps its place across a target's phases.
- **together**: all three at once, the issue's scenario.

"p99 / calm" is the phase's browser p99 over the same target's calm p99 in this run: **the goal is within ${GOAL_RATIO}x and no browser error**.
Party columns: how its requests (greedy, crawler) or connections (slow readers: "cut" = the server closed it before the response ended,
"held to the end" = still open when the phase ended) ended, with their mean length, and the megabytes it took in. Proxy RSS is the peak
of the target's process tree, sampled every 250 ms.

**Targets**, each in front of fresh reference workers (${Object.entries(s.layout).map(([pool, count]) => `${count} ${pool}`).join(' + ')}, one app request at a time each):
- **Switchyard**, product defaults: browser and page lanes on the 2 web workers, clones and bots on the 3 clone workers (this fleet has
  no bot workers; the crawler names itself Googlebot, so it is a bot, keyed by its /24).
- **nginx** round-robin over all 5 workers as in the other fleet scenarios (\`proxy_buffering off\`, \`send_timeout\` 60 s), with nginx's
  documented per-address limits on everything but \`/_static/\`: \`limit_req_zone $binary_remote_addr zone=req:10m rate=${nginx.ratePerSec}r/s\`,
  \`limit_req zone=req burst=${nginx.burst} nodelay\`, \`limit_conn_zone $binary_remote_addr zone=addr:10m\`, \`limit_conn addr ${nginx.connections}\`, refusals ${nginx.status}.
- **HAProxy** roundrobin over all 5 workers as in the other fleet scenarios, with a stick-table limit on everything but \`/_static/\`:
  \`stick-table type ip size 100k expire 30s store http_req_rate(${haproxy.windowSec}s),conn_cur\`, \`http-request track-sc0 src\`,
  \`http-request deny deny_status ${haproxy.status} if { sc_http_req_rate(0) gt ${haproxy.requests} }\` and \`... if { sc_conn_cur(0) gt ${haproxy.concurrent} }\`.
- **nginx round-robin**, **HAProxy roundrobin** (rows only when asked for with \`--targets nginx-rr,haproxy-rr\`): the same without the limits.

${table}

${chart}

**Verdict** (issue 18: browser p99 within ${GOAL_RATIO}x of browsing alone, no browser error):
${verdict.map((line) => `- ${line}`).join('\n')}
`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  });
}
