// Hardening: browsers under attack. The same browsing load through five phases on the same
// processes (calm; slow request bodies; fake WebSocket upgrades that never read; the seeded
// fuzzer), against Switchyard (its defaults, and a shorter send timeout), nginx and HAProxy in
// front of the same reference workers, in one run. Issue 17's done-criterion: zero proxy
// restarts, zero hung processes, browser pages at their normal latency.
//   npm run bench -- hardening [--users 30] [--think-ms 2000] [--phase-seconds 25] [--slow-bodies 16]
//     [--fake-upgrades 40] [--fuzz-concurrency 16] [--seed 17] [--short-send-ms 5000] [--phases slow-body,fuzz,...]
//     [--targets switchyard,switchyard-send-short,nginx-rr,haproxy-rr,nginx-iphash,haproxy-source] [--no-doc]
// Prints the table and rewrites the "## Hardening: browsers under attack (bench/hardening)" section of docs/benchmarks.md.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../lib/config.ts';
import { imageLink, IMG_DIR, loadAverage, machineInfo, machineLine, positiveFlags, writeDocSection } from './fleet/doc.ts';
import { baselineTargets, switchyardTarget, type FleetTargetSpec, type SwitchyardSetup } from './fleet/targets.ts';
import { writeBarChart } from './lib/chart.ts';
import { installCleanup, stopAll } from './lib/processes.ts';
import { Progress } from './lib/progress.ts';
import type { PhaseName } from './hardening/attacks.ts';
import { PHASES, runTarget, type HardeningSettings, type TargetResult } from './hardening/phase.ts';
import { HUGE_FILE, HUGE_FILE_LABEL, hardeningRepos, LARGE_FILE } from './hardening/repos.ts';
import { hardeningTable, hardeningVerdict, NORMAL_RATIO } from './hardening/report.ts';

const HEADING = '## Hardening: browsers under attack (bench/hardening)';
const DEFAULT_TARGETS = ['switchyard', 'switchyard-send-short', 'nginx-rr', 'haproxy-rr'];

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: 'string', default: '30' },
      'think-ms': { type: 'string', default: '2000' },
      'phase-seconds': { type: 'string', default: '25' },
      'page-timeout-ms': { type: 'string', default: '15000' },
      'slow-bodies': { type: 'string', default: '16' },
      'fake-upgrades': { type: 'string', default: '40' },
      'fuzz-concurrency': { type: 'string', default: '16' },
      seed: { type: 'string', default: '17' },
      'short-send-ms': { type: 'string', default: '5000' },
      'repo-mb': { type: 'string', default: '8' },
      phases: { type: 'string' },
      targets: { type: 'string' },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  const n = positiveFlags(
    values,
    ['users', 'think-ms', 'phase-seconds', 'page-timeout-ms', 'slow-bodies', 'fake-upgrades', 'fuzz-concurrency', 'seed', 'short-send-ms', 'repo-mb'] as const,
  );
  const asked = values.phases?.split(',') ?? PHASES;
  const unknown = asked.filter((phase) => !PHASES.includes(phase as PhaseName));
  if (unknown.length) throw new Error(`--phases: unknown ${unknown.join(', ')}; one of ${PHASES.join(', ')}`);
  const settings: HardeningSettings = {
    // calm always runs first: every other phase is measured against it
    phases: PHASES.filter((phase) => phase === 'calm' || asked.includes(phase)),
    users: n.users,
    thinkMs: n['think-ms'],
    phaseSec: n['phase-seconds'],
    pageTimeoutMs: n['page-timeout-ms'],
    slowBodies: n['slow-bodies'],
    fakeUpgrades: n['fake-upgrades'],
    fuzzConcurrency: Math.max(1, n['fuzz-concurrency']),
    fuzzSeed: n.seed,
    layout: { web: 2, clone: 3 },
  };
  return { settings, shortSendMs: n['short-send-ms'], repoMb: n['repo-mb'], only: values.targets?.split(',') ?? DEFAULT_TARGETS, writeDoc: !values['no-doc'] };
}

/**
 * Switchyard as the other fleet scenarios run it with product defaults: browser and page lanes on
 * the web workers, clones on the clone workers; its data directory (body spool, admin token) its
 * own, not the checkout's var/, whose spool a proxy empties when it starts.
 */
const switchyardSetup = (proxy: Record<string, unknown> = {}): SwitchyardSetup => ({
  pools: { web: ['web'], clone: ['clone'] },
  config: { data: path.join(PROJECT_ROOT, '.bench-tmp', 'hardening-proxy-data'), proxy },
});

export async function main(argv: string[]): Promise<void> {
  const { settings, shortSendMs, repoMb, only, writeDoc } = parse(argv);
  installCleanup();
  const machine = machineInfo();
  const date = new Date();
  try {
    const repos = await hardeningRepos(repoMb, () => process.stderr.write(`generating ${repoMb} MB git and hg repositories...\n`));
    const specs: FleetTargetSpec[] = [
      switchyardTarget('Switchyard (defaults: 60 s send timeout)', switchyardSetup(), 'switchyard'),
      switchyardTarget(`Switchyard (${shortSendMs / 1000} s send timeout)`, switchyardSetup({ streaming: { sendTimeoutMs: shortSendMs } }), 'switchyard-send-short'),
      ...(await baselineTargets((pkg) => process.stderr.write(`installing ${pkg} with apt-get...\n`))),
    ].filter((spec) => only.includes(spec.id));
    for (const spec of specs.filter((s) => s.skipped)) process.stderr.write(`skipping ${spec.label}: ${spec.skipped}\n`);
    const runnable = specs.filter((spec) => !spec.skipped);
    const progress = new Progress(runnable.length);
    const results: TargetResult[] = [];
    for (const spec of runnable) results.push(await runTarget(spec, repos, settings, progress));

    const table = hardeningTable(results);
    const verdict = hardeningVerdict(results);
    console.log(`\n${table}\n`);
    for (const line of verdict) console.log(`- ${line}`);
    if (writeDoc) {
      const chart = path.join(IMG_DIR, 'hardening.svg');
      const rows = results.flatMap((target) => target.phases.map((phase) => ({ target, phase })));
      writeBarChart(chart, {
        title: 'Browser page load per phase (page + subresources)',
        unit: 'ms',
        log: true,
        rows: rows.map(({ target, phase }) => `${target.label.split(' (')[0]}${target.id === 'switchyard-send-short' ? ` ${shortSendMs / 1000} s` : ''}: ${phase.phase} (${phase.browsing.errors} errors)`),
        series: [
          { name: 'p50', color: '#7aa6d8', values: rows.map(({ phase }) => phase.browsing.p50Ms) },
          { name: 'p99', color: '#1f4e8c', values: rows.map(({ phase }) => phase.browsing.p99Ms) },
        ],
      });
      writeDocSection(HEADING, markdown(settings, table, verdict, imageLink('browser page load p50/p99 per target and phase', chart), machineLine(machine, specs, loadAverage()), date, argv));
      console.log(`\nwrote ${HEADING.slice(3)} in docs/benchmarks.md`);
    }
  } finally {
    await stopAll();
  }
}

function markdown(s: HardeningSettings, table: string, verdict: string[], chart: string, machine: string, date: Date, argv: string[]): string {
  return `Generated by \`npm run bench -- hardening${argv.length ? ` ${argv.join(' ')}` : ''}\` (\`bench/hardening.ts\`) on ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC. Re-running replaces this section.

${machine}

**Load.** ${s.users} simulated browsers (as in the stampede: each from its own address, a repo page and its subresources over up to 6
keep-alive connections, ${s.thinkMs} ms mean think time, an error on any non-200 or after ${s.pageTimeoutMs / 1000} s) browse through ${PHASES.length} phases of ${s.phaseSec} s,
back to back on the same processes; each attack starts 1 s before its phase's browsing, keeps its number of connections for the whole
phase (one that ends is replaced) and is closed at the phase's end; the next phase starts once a page loads again.
1. **calm**: browsing alone.
2. **slow-body**: ${s.slowBodies} connections \`POST /demo-git/git-upload-pack\` (git's fetch negotiation) with \`Content-Length: 100000\`, then 1 byte a second.
   (The issue's \`POST /demo-git\` is answered 405 by the reference worker before its body, so it holds a worker nowhere; this one makes
   the worker wait for the body once it has it.)
3. **fake-upgrade**: ${s.fakeUpgrades} connections \`GET ${LARGE_FILE}\` (4 MB, the issue's) with \`Connection: Upgrade\`, \`Upgrade: websocket\`;
   they read the status line and never again.
4. **fake-upgrade-large**: the same with \`${HUGE_FILE}\` (${HUGE_FILE_LABEL}): more than this machine's loopback socket buffers and a
   proxy's window take in, so the worker cannot finish its response while the client does not read.
5. **fuzz**: the seeded fuzzer of the test suite (test/fuzz, seed ${s.fuzzSeed}, from case 0 for every target), ${s.fuzzConcurrency} conversations at a time.
   A conversation lasts until the server closes it (at most 15 s), so a target that keeps idle keep-alive connections open longer
   sees fewer conversations; "hung" counts those the server sent nothing on and did not close within 15 s.

"p99 / calm" is the phase's browser p99 over the same target's calm p99 in this run: **normal latency means within ${NORMAL_RATIO}x and no errors**.
"proxy restarts" counts processes of the target that ended (the target itself, which nothing restarts here and PM2 would, or a child
such as nginx's worker). RSS is the peak of the target's process tree, sampled every 250 ms.

**Targets**, each in front of fresh reference workers (${Object.entries(s.layout).map(([pool, count]) => `${count} ${pool}`).join(' + ')}, one app request at a time each), configured as in the other fleet scenarios:
- **Switchyard**, product defaults: browser and page lanes on the 2 web workers, clones on the 3 clone workers. **Buffers request bodies**
  (up to 16 MB per request before it takes a worker; a body slower than 1 KiB/s over 5 s gets 408). An upgrade takes a slot of its lane;
  a worker's non-101 answer is relayed with backpressure, and a client that takes no bytes for \`proxy.streaming.sendTimeoutMs\` (60 s) is
  cut; the second row runs with a shorter send timeout.
- **nginx** round-robin over all 5 workers, \`proxy_buffering off\` and \`proxy_request_buffering off\` ("just stream everything"): **does not
  buffer request bodies** (nginx's own default would); \`client_body_timeout\`/\`send_timeout\` 60 s between two reads/writes. It does not pass
  \`Upgrade\` on (no \`proxy_set_header Upgrade\`), so a fake upgrade is a plain streamed GET.
- **HAProxy** roundrobin over all 5 workers, no \`option http-buffer-request\`: **does not buffer request bodies** (\`timeout http-request 10s\`
  covers the headers only); passes the upgrade on, relays the worker's 200; \`timeout server 60s\`, \`timeout client 75s\`.

${table}

${chart}

**Verdict** (issue 17: zero proxy restarts, zero hung processes, browser pages at their normal latency under every attack):
${verdict.map((line) => `- ${line}`).join('\n')}
`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  });
}
