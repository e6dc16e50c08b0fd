// Reload and replacement under load: browsers browsing and CI bots cloning (the midnight stampede's
// load, the bots cloning again and again, some over slow links) while the front end gets 10 config
// reloads and 3 replacements of its serving process, spaced through the run. Switchyard under its
// proxy master (as PM2 runs it) against nginx (reload, binary upgrade) and HAProxy (master-worker
// reloads), in front of the same workers, in one run.
//   npm run bench -- reload [--quick] [--users 50] [--bots 12] [--slow 3] [--slow-kbps 512] [--repo-mb 8] [--load-seconds 120]
//     [--reloads 10] [--replacements 3] [--window-seconds 5] [--grace-seconds 180] [--targets switchyard,nginx,haproxy] [--no-doc]
// --quick: fewer users, bots and events over 40 s per target, a smoke run that writes no doc.
// Prints the table and rewrites the "## Reload and replacement (bench/reload)" section of docs/benchmarks.md.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadAverage, machineInfo, machineLine, positiveFlags, writeDocSection } from './fleet/doc.ts';
import { largeRepos } from './fleet/repos.ts';
import { installCleanup, stopAll } from './lib/processes.ts';
import { sourceRevision } from './lib/machine.ts';
import { Progress } from './lib/progress.ts';
import { BOT_CIDR, botKind } from './stampede/bots.ts';
import { runReloadPhase, type ReloadSettings } from './reload/phase.ts';
import { stampedeLoad } from './stampede/phase.ts';
import { notes, resultsTable, summarize, verdict, type ReloadSummary } from './reload/report.ts';
import { planEvents } from './reload/schedule.ts';
import { reloadTargets } from './reload/targets.ts';

const HEADING = '## Reload and replacement (bench/reload)';

const FULL = {
  users: '50',
  bots: '12',
  slow: '3',
  'slow-kbps': '512',
  'repo-mb': '8',
  'hg-every': '3',
  'load-seconds': '120',
  reloads: '10',
  replacements: '3',
  'window-seconds': '5',
  'grace-seconds': '180',
  'clone-deadline': '120',
  'think-ms': '4000',
  'page-timeout-ms': '30000',
};
/** --quick: a smoke run of a minute or so per target; it leaves docs/benchmarks.md alone */
const QUICK: Partial<typeof FULL> = { users: '20', bots: '4', slow: '1', 'repo-mb': '2', 'load-seconds': '40', reloads: '4', replacements: '1', 'grace-seconds': '60' };
type Flag = keyof typeof FULL;

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...(Object.fromEntries(Object.keys(FULL).map((flag) => [flag, { type: 'string' }])) as Record<Flag, { type: 'string' }>),
      quick: { type: 'boolean', default: false },
      targets: { type: 'string' },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  const defaults = values.quick ? { ...FULL, ...QUICK } : FULL;
  const given = Object.fromEntries(Object.keys(FULL).map((flag) => [flag, values[flag as Flag] ?? defaults[flag as Flag]]));
  const n = positiveFlags(
    given,
    ['users', 'bots', 'slow', 'slow-kbps', 'repo-mb', 'hg-every', 'load-seconds', 'reloads', 'replacements', 'grace-seconds', 'clone-deadline', 'think-ms', 'page-timeout-ms'] as const,
    ['window-seconds'] as const,
  );
  const settings: ReloadSettings = {
    ...stampedeLoad(n),
    loadSec: n['load-seconds'],
    reloads: n.reloads,
    replacements: n.replacements,
    windowSec: n['window-seconds'],
  };
  return { settings, graceMs: n['grace-seconds'] * 1000, repoMb: n['repo-mb'], only: values.targets?.split(','), writeDoc: !values['no-doc'] && !values.quick };
}

export async function main(argv: string[]): Promise<void> {
  const { settings, graceMs, repoMb, only, writeDoc } = parse(argv);
  installCleanup();
  const machine = machineInfo();
  const date = new Date();
  try {
    const repos = await largeRepos(repoMb, () => process.stderr.write(`generating ${repoMb} MB git and hg repositories...\n`));
    const specs = (await reloadTargets(graceMs, (pkg) => process.stderr.write(`installing ${pkg} with apt-get...\n`))).filter((spec) => !only || only.includes(spec.id));
    for (const spec of specs.filter((s) => s.skipped)) process.stderr.write(`skipping ${spec.label}: ${spec.skipped}\n`);
    const runnable = specs.filter((spec) => !spec.skipped);
    const progress = new Progress(runnable.length);
    const rows: ReloadSummary[] = [];
    for (const spec of runnable) rows.push(summarize(await runReloadPhase(spec, repos, settings, progress), settings.windowSec));

    const table = resultsTable(rows);
    const { lines } = verdict(rows);
    console.log(`\n${table}\n`);
    for (const line of [...lines, ...notes(rows)]) console.log(`- ${line}`);
    if (writeDoc) {
      const run = { machine: machineLine(machine, runnable, loadAverage()), revision: await sourceRevision(), date, argv };
      writeDocSection(HEADING, markdown(rows, settings, graceMs, repoMb, table, lines, run));
      console.log(`\nwrote ${HEADING.slice(3)} in docs/benchmarks.md`);
    }
  } finally {
    await stopAll();
  }
}

interface RunInfo {
  machine: string;
  revision: string;
  date: Date;
  argv: string[];
}

function markdown(rows: ReloadSummary[], s: ReloadSettings, graceMs: number, repoMb: number, table: string, verdictLines: string[], { machine, revision, date, argv }: RunInfo): string {
  const extra = notes(rows);
  const hgBots = Array.from({ length: s.bots }, (_, bot) => botKind(s, bot)).filter((kind) => kind === 'hg').length;
  const replaceAt = planEvents(s.reloads, s.replacements, 0, 1)
    .flatMap((event, index) => (event.kind === 'replace' ? [index + 1] : []))
    .join(', ');
  return `Generated by \`npm run bench -- reload${argv.length ? ` ${argv.join(' ')}` : ''}\` (\`bench/reload.ts\`) on ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC, Switchyard at \`${revision}\`. Re-running replaces this section.

${machine}

**Load.** The midnight stampede's (bench/stampede): ${s.users} simulated browser users, each from its own address, load repo pages
(page, then its subresources over up to 6 keep-alive connections; an error on any non-200, a reset, or after ${s.pageTimeoutMs / 1000} s) with
${s.thinkMs} ms mean think time for ${s.loadSec} s. ${s.bots} CI bots (${hgBots} with \`hg clone\` of big-hg, ${s.bots - hgBots} with \`git clone --bare\`
of big-git, ${repoMb} MB each) start cloning together, and each starts its next clone 0.5-2 s after the last, until the end;
each has its own address in ${BOT_CIDR} through its own relay, ${s.slow} of them at ${s.slowBytesPerSec / 1024} KiB/s. A clone counts as broken when
\`git\`/\`hg\` exits non-zero or is not done after ${s.cloneDeadlineSec} s (git checks the pack it receives, hg the changegroup). The simulated
browser retries a request once on a new connection when a reused keep-alive connection turns out closed before any answer, as
browsers do; a page load fails only past that.

**Events.** ${s.reloads} reloads and ${s.replacements} replacements, evenly spaced through the load (replacements as events ${replaceAt} of
${s.reloads + s.replacements}). Each reload alternates a real change of the config file and back; a replacement starts a fresh serving process
and retires the old one, which finishes what it has (clones included). An event counts as done only once it took effect (below, per
target). A page load counts as **during** an event when it overlaps the event (from its start until it took effect: the reloaded config
applied, or the new process serving) or the ${s.windowSec} s after it; the others are **outside**. **Proxy restarts** counts the target's
processes that ended unplanned (a crash that a master or PM2 would restart); the old processes that a replacement retires are not counted.
- **Switchyard** under its proxy master (\`proxy/master.ts\` running the compiled \`proxy/main.ts\`, as the \`proxy\` PM2 app runs),
  configured as in the midnight stampede, \`proxy.shutdown.graceMs\` ${graceMs / 1000} s. Reload: the config file is rewritten (one more
  classification rule and the clone queue's timeout, then back) and the master gets SIGHUP, as \`pm2 sendSignal SIGHUP proxy\` would
  send it; done when the serving process logs \`config reloaded\` with those changes applied and none left out. Replacement: the
  control API's \`POST /restart\`, which answers once the successor listens; one at a time, so a replacement waits for the previous
  old process to have finished its clones.
- **nginx** round-robin over all 5 workers, as in the midnight stampede, but as a daemon (pid file): nginx ignores the
  binary-upgrade signal in a master whose parent is still the process that started it (\`daemon off\` under a supervisor).
  Reload: \`nginx -s reload\` with the same \`-p\`/\`-c\`/\`-g\` after changing \`proxy_read_timeout\` (60 s, 61 s); done when a new
  worker process runs. Replacement: the binary upgrade (SIGUSR2 to the master; once the new master's worker runs, SIGWINCH and
  SIGQUIT to the old master), waiting for the previous old master to exit first (the new one ignores SIGUSR2 until then).
- **HAProxy** roundrobin over all 5 workers, as in the midnight stampede, in master-worker mode (\`-W -db\`). Reload: SIGUSR2 to the
  master after changing \`timeout server\` (60 s, 61 s); replacement: the same reload with the config unchanged; each done when a
  new worker process runs. HAProxy 2.6's master passes the listeners to the new worker itself (\`-x sockpair@...\`), the seamless
  reload; the old worker finishes its connections.

${table}

**Verdict** (issue 20: zero failed requests and zero broken clones for Switchyard):
${verdictLines.map((line) => `- ${line}`).join('\n')}
${extra.length ? `\nNotes:\n${extra.map((note) => `- ${note}`).join('\n')}\n` : ''}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  });
}
