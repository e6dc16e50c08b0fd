// Midnight stampede: CI bots all clone a large git/hg repo at the same moment (some over a slow
// link) while simulated browser users browse repo pages; Switchyard (clone sharing on and off)
// against nginx and HAProxy configured as operators do today, in front of the same workers, in one run.
//   npm run bench -- midnight-stampede [--users 50] [--bots 30] [--slow 6] [--slow-kbps 1024] [--repo-mb 8]
//     [--browse-seconds 40] [--clone-deadline 120] [--think-ms 4000] [--targets switchyard,switchyard-unshared,nginx-rr,...] [--no-doc]
// Prints the table and rewrites the "## Midnight stampede (bench/midnight-stampede)" section of docs/benchmarks.md.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { imageLink, IMG_DIR, loadAverage, machineInfo, machineLine, positiveFlags, writeDocSection } from './fleet/doc.ts';
import { largeRepos } from './fleet/repos.ts';
import { baselineTargets, switchyardTarget, type FleetTargetSpec } from './fleet/targets.ts';
import { writeBarChart } from './lib/chart.ts';
import { installCleanup, stopAll } from './lib/processes.ts';
import { Progress } from './lib/progress.ts';
import { BOT_CIDR } from './stampede/bots.ts';
import { runPhase, stampedeLoad, type PhaseResult, type StampedeSettings } from './stampede/phase.ts';
import { STAMPEDE_SWITCHYARD, STAMPEDE_SWITCHYARD_UNSHARED } from './stampede/switchyard.ts';
import { errorNotes, resultsTable, verdict } from './stampede/report.ts';

const HEADING = '## Midnight stampede (bench/midnight-stampede)';

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: 'string', default: '50' },
      bots: { type: 'string', default: '30' },
      slow: { type: 'string', default: '6' },
      'slow-kbps': { type: 'string', default: '1024' },
      'repo-mb': { type: 'string', default: '8' },
      'hg-every': { type: 'string', default: '3' },
      'browse-seconds': { type: 'string', default: '40' },
      'stampede-at': { type: 'string', default: '3' },
      'clone-deadline': { type: 'string', default: '120' },
      'think-ms': { type: 'string', default: '4000' },
      'page-timeout-ms': { type: 'string', default: '30000' },
      targets: { type: 'string' },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  const n = positiveFlags(values, ['users', 'bots', 'slow', 'slow-kbps', 'repo-mb', 'hg-every', 'browse-seconds', 'clone-deadline', 'think-ms', 'page-timeout-ms'] as const, ['stampede-at'] as const);
  const settings: StampedeSettings = { ...stampedeLoad(n), browseSec: n['browse-seconds'], stampedeAtSec: n['stampede-at'] };
  return { settings, repoMb: n['repo-mb'], only: values.targets?.split(','), writeDoc: !values['no-doc'], argv };
}

const switchyard = switchyardTarget('Switchyard', STAMPEDE_SWITCHYARD);
const unshared = switchyardTarget('Switchyard, clone sharing off', STAMPEDE_SWITCHYARD_UNSHARED, 'switchyard-unshared');

export async function main(argv: string[]): Promise<void> {
  const { settings, repoMb, only, writeDoc } = parse(argv);
  installCleanup();
  const machine = machineInfo();
  const date = new Date();
  try {
    const repos = await largeRepos(repoMb, () => process.stderr.write(`generating ${repoMb} MB git and hg repositories...\n`));
    const baselines = await baselineTargets((pkg) => process.stderr.write(`installing ${pkg} with apt-get...\n`));
    const specs: FleetTargetSpec[] = [switchyard, unshared, ...baselines].filter((spec) => !only || only.includes(spec.id));
    for (const spec of specs.filter((s) => s.skipped)) process.stderr.write(`skipping ${spec.label}: ${spec.skipped}\n`);
    const runnable = specs.filter((spec) => !spec.skipped);
    const phases: [FleetTargetSpec, boolean][] = [
      ...runnable.filter((spec) => spec.id === 'switchyard').map((spec): [FleetTargetSpec, boolean] => [spec, false]),
      ...runnable.map((spec): [FleetTargetSpec, boolean] => [spec, true]),
    ];
    const progress = new Progress(phases.length);
    const results: PhaseResult[] = [];
    for (const [spec, withStampede] of phases) results.push(await runPhase(spec, repos, settings, withStampede, progress));

    const table = resultsTable(results, settings);
    const { lines } = verdict(results, settings);
    console.log(`\n${table}\n`);
    for (const line of [...lines, ...errorNotes(results)]) console.log(`- ${line}`);
    if (writeDoc) {
      const charts = writeCharts(results);
      writeDocSection(HEADING, markdown(results, settings, repoMb, table, lines, charts, machineLine(machine, specs, loadAverage()), date, argv));
      console.log(`\nwrote ${HEADING.slice(3)} in docs/benchmarks.md`);
    }
  } finally {
    await stopAll();
  }
}

function writeCharts(results: PhaseResult[]): string[] {
  const pages = path.join(IMG_DIR, 'midnight-stampede-pages.svg');
  const clones = path.join(IMG_DIR, 'midnight-stampede-clones.svg');
  writeBarChart(pages, {
    title: 'Midnight stampede: browser page load (page + subresources)',
    unit: 'ms',
    log: true,
    rows: results.map((result) => `${result.label} (${result.browsing.errors} errors)`),
    series: [
      { name: 'p50', color: '#7aa6d8', values: results.map((result) => result.browsing.p50Ms) },
      { name: 'p99', color: '#1f4e8c', values: results.map((result) => result.browsing.p99Ms) },
    ],
  });
  const stampeded = results.filter((result) => result.stampede);
  writeBarChart(clones, {
    title: 'Midnight stampede: time until every clone finished (or the deadline)',
    unit: 's',
    rows: stampeded.map((result) => `${result.label} (${result.clones.filter((c) => c.ok).length}/${result.clones.length} ok)`),
    series: [{ name: 'all clones done', color: '#d08a2c', values: stampeded.map((result) => result.clonesWallSec) }],
  });
  return [imageLink('browser page load p50/p99 per target', pages), imageLink('clone completion time per target', clones)];
}

function markdown(results: PhaseResult[], s: StampedeSettings, repoMb: number, table: string, verdictLines: string[], charts: string[], machine: string, date: Date, argv: string[]): string {
  const hg = Array.from({ length: s.bots }, (_, bot) => bot % s.hgEvery === s.hgEvery - 1).filter(Boolean).length;
  return `Generated by \`npm run bench -- midnight-stampede${argv.length ? ` ${argv.join(' ')}` : ''}\` (\`bench/midnight-stampede.ts\`) on ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC. Re-running replaces this section.

${machine}

**Load.** ${s.users} simulated browser users, each from its own address (127.10.<i>.1), load repo pages in a loop for ${s.browseSec} s with
${s.thinkMs} ms mean think time: the page, then its stylesheet, script, icon and logo found with cheerio and fetched over up to 6 parallel
keep-alive connections, as a browser does; a load counts from the page request to the last subresource, and is an error on any non-200
or after ${s.pageTimeoutMs / 1000} s. ${s.stampedeAtSec} s in, ${s.bots} CI bots start cloning at the same moment (${s.bots - hg} \`git clone --bare\`
of big-git, ${hg} \`hg clone --noupdate\` of big-hg, ${repoMb} MB of incompressible content in 20 commits each); each bot goes through its
own relay (bench/lib/throttle-relay.ts) that gives it its own source address in 127.20.0.0/16 (its requests keep the server's Host, as CI machines
cloning one URL send it), and ${s.slow} of them are throttled to
${s.slowBytesPerSec / 1024} KiB/s (a slow link). Clones run until done or ${s.cloneDeadlineSec} s. Without a stampede, the same users browse alone.

**Fleet.** The same ${Object.entries(s.layout).map(([pool, count]) => `${count} ${pool}`).join(' + ')} reference workers (one app request at a time each, a clone
included) behind every target, restarted before each target. RSS is the peak of the sum over each group's processes and their children
(git/hg/CGI children of the workers included), sampled every 250 ms. Worker CPU is user + system time from /proc/<pid>/stat of the
workers with their git/hg children (live ones, and reaped ones through cutime/cstime), from the stampede's start until the last
clone ended: all ${Object.values(s.layout).reduce((a, b) => a + b, 0)} workers (browsing included), and for Switchyard the clone pool's workers alone, which serve only clones.
Clone p50 is over the clones on a full-speed link; "all clones" is the time until the last one ended.
- **Switchyard**: \`bots.cidrs: [${BOT_CIDR}]\`; browser and page lanes on the 2 web workers; clone and bot lanes on the 3 clone workers
  (least-outstanding, bots behind human clones; clone queue 500 deep, 10 min timeout, since bots can wait); static files from disk;
  clone sharing on with its defaults (identical full clones share one worker generation; a completed one serves for 300 s).
  **Switchyard, clone sharing off**: the same with \`proxy.cloneSharing.enabled: false\` (every clone runs its own git/hg on a worker).
- **nginx** (round-robin or \`ip_hash\`) and **HAProxy** (\`roundrobin\` or \`balance source\`): one worker process / thread, all 5 workers in one
  upstream, \`/_static/\` from disk, responses streamed (\`proxy_buffering off\`, the seeds' "just stream everything"), upstream
  keep-alive, their default timeouts (nginx 60 s read, HAProxy \`timeout server 60s\`). No lanes, no queues: what the seeds' advice gives
  without writing CI-separating rules by hand.

${table}

${charts.join('\n')}

**Verdict** (targets from the issue):
${verdictLines.map((line) => `- ${line}`).join('\n')}
${errorNotes(results).length ? `\nErrors seen:\n${errorNotes(results).map((note) => `- ${note}`).join('\n')}\n` : ''}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  });
}
