// Sizing: what one clone costs each component (proxy CPU, worker CPU, bytes, wall time) for the
// demo and the large git/hg repos, one at a time and in a stampede, clone sharing on and off; and
// what Redis and PostgreSQL see from a running fleet (PM2 stack) idle and under clones.
//   npm run bench -- sizing [--clones 3] [--stampede 10] [--repo-mb 8] [--store-seconds 60] [--cloners 2]
//     [--repos demo-git,demo-hg,big-git,big-hg] [--no-stores] [--no-doc]
// Prints the tables and rewrites the "## Sizing (bench/sizing)" section of docs/benchmarks.md;
// docs/operations.md's sizing note is worked out from them.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadAverage, machineInfo, machineLine, positiveFlags, writeDocSection } from './fleet/doc.ts';
import { startFleet } from './fleet/workers.ts';
import { installCleanup, stopAll } from './lib/processes.ts';
import { Progress } from './lib/progress.ts';
import { measureClones, type CloneCase, type CloneCost } from './sizing/clone-costs.ts';
import { CLONES_PER_HOUR, cloneTable, hourlyNeeds, hourlyTable, perCloneStoreCost, storeDetails, storeTable } from './sizing/report.ts';
import { MEASURED_REPOS, sizingRepos, type MeasuredRepo } from './sizing/repos.ts';
import { measureStoreLoad, type StoreWindow } from './sizing/store-load.ts';

const HEADING = '## Sizing (bench/sizing)';
const LAYOUT = { web: 1, clone: 2 };

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      clones: { type: 'string', default: '3' },
      stampede: { type: 'string', default: '10' },
      'repo-mb': { type: 'string', default: '8' },
      'store-seconds': { type: 'string', default: '60' },
      cloners: { type: 'string', default: '2' },
      repos: { type: 'string', default: MEASURED_REPOS.join(',') },
      'no-stores': { type: 'boolean', default: false },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  const n = positiveFlags(values, ['clones', 'stampede', 'repo-mb', 'store-seconds', 'cloners'] as const);
  const repos = values.repos.split(',').map((repo) => {
    if (!(MEASURED_REPOS as readonly string[]).includes(repo)) throw new Error(`--repos: "${repo}" is not one of ${MEASURED_REPOS.join(', ')}`);
    return repo as MeasuredRepo;
  });
  if (n.clones < 1 || n.stampede < 2 || n['store-seconds'] < 10 || n['store-seconds'] > 600 || n.cloners < 1 || n.cloners > 16) {
    throw new Error('expected --clones >= 1, --stampede >= 2, --store-seconds 10..600, --cloners 1..16');
  }
  return { n, repos, stores: !values['no-stores'], writeDoc: !values['no-doc'] };
}

function cases(repos: MeasuredRepo[], clones: number, stampede: number): CloneCase[] {
  return repos.flatMap((repo) =>
    [false, true].flatMap((sharing) => [
      { repo, sharing, concurrency: 1, clones },
      { repo, sharing, concurrency: stampede, clones: stampede },
    ]),
  );
}

export async function main(argv: string[]): Promise<void> {
  const { n, repos, stores, writeDoc } = parse(argv);
  installCleanup();
  process.env.LOG_LEVEL ??= 'warn';
  const machine = machineInfo();
  const date = new Date();
  const plan = cases(repos, n.clones, n.stampede);
  const progress = new Progress(plan.length + (stores ? 1 : 0));
  try {
    const reposDir = await sizingRepos(n['repo-mb'], () => process.stderr.write('generating the demo and large repositories...\n'));
    const costs: CloneCost[] = [];
    const fleet = await startFleet(LAYOUT, reposDir);
    try {
      for (const c of plan) {
        progress.start(`${c.repo}, clone sharing ${c.sharing ? 'on' : 'off'}, ${c.clones} clones ${c.concurrency} at a time`);
        const cost = await measureClones(fleet, c);
        costs.push(cost);
        progress.done(`${cost.ok}/${cost.clones} ok in ${cost.wallSec.toFixed(1)} s${cost.failures.length ? `; ${cost.failures[0]}` : ''}`);
      }
    } finally {
      await fleet.stop();
    }
    let windows: StoreWindow[] = [];
    let stackLayout: Record<string, number> = {};
    if (stores) {
      progress.start('Redis and PostgreSQL under a running fleet');
      ({ windows, layout: stackLayout } = await measureStoreLoad({ seconds: n['store-seconds'], cloners: n.cloners, onProgress: (m) => progress.update(m) }));
      progress.done(windows.map((w) => `${w.label}: ${w.clones} clones`).join(', '));
    }

    const tables = { clones: cloneTable(costs), hourly: hourlyTable(hourlyNeeds(costs)), stores: windows.length ? storeTable(windows) : '' };
    const notes = [...storeDetails(windows), ...storeNote(windows)];
    console.log(`\n${tables.clones}\n\n${tables.hourly}\n${tables.stores ? `\n${tables.stores}\n` : ''}`);
    for (const note of notes) console.log(`- ${note}`);
    if (writeDoc) {
      writeDocSection(HEADING, markdown(tables, notes, n, stackLayout, machineLine(machine, [], loadAverage()), date, argv));
      console.log(`\nwrote ${HEADING.slice(3)} in docs/benchmarks.md`);
    }
  } finally {
    await stopAll();
  }
}

function storeNote(windows: StoreWindow[]): string[] {
  const cost = perCloneStoreCost(windows);
  if (!cost) return [];
  return [`Each clone over the idle baseline: ${cost.pgCommits.toFixed(1)} PostgreSQL commits, ${cost.redisCommands.toFixed(2)} Redis commands.`];
}

function markdown(
  tables: { clones: string; hourly: string; stores: string },
  notes: string[],
  n: Record<'clones' | 'stampede' | 'repo-mb' | 'store-seconds' | 'cloners', number>,
  stackLayout: Record<string, number>,
  machine: string,
  date: Date,
  argv: string[],
): string {
  const layout = (l: Record<string, number>) => Object.entries(l).map(([pool, count]) => `${count} ${pool}`).join(' + ');
  return `Generated by \`npm run bench -- sizing${argv.length ? ` ${argv.join(' ')}` : ''}\` (\`bench/sizing.ts\`) on ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC. Re-running replaces this section. The sizing note in [operations](operations.md#sizing-10000-ci-clones-an-hour) is worked out from these numbers.

${machine}

**What one clone costs.** ${layout(LAYOUT)} reference workers (worker/main.ts, one app request at a time) behind a fresh Switchyard process
per row (the stampede bench's setup: clones on the clone pool, least-outstanding), started clean so clone sharing's spool is empty, and
warmed up with one clone of a copy of the demo repo (not measured). Then ${n.clones} clones one after the other ("at once" 1) or ${n.stampede}
started together (a CI stampede), by the real \`git clone --bare\` / \`hg clone --noupdate\` from 127.0.0.1 (niced: they stand for CI machines
elsewhere), all asking for the same thing, as CI jobs of one commit do. Clone sharing on: identical clones share one worker run
("worker runs" counts the pack or bundle requests a worker answered, from the access log); off: every clone is its own git/hg run.
demo-git/demo-hg are the seeded demo repos (300 commits of source files, what \`npm start\` serves); big-git/big-hg ${n['repo-mb']} MB of
incompressible content in 20 commits. CPU is user + system time from /proc/<pid>/stat: the proxy process, and the clone workers with
their git/hg children (reaped ones through cutime/cstime), from the first clone's start to the last one's end, divided by the clones.
MB/clone is the response bytes the proxy sent (its JSON access log). The clients' own CPU is not counted.

${tables.clones}

**${CLONES_PER_HOUR.toLocaleString('en-US')} clones an hour** (2.78 a second) at the stampede rows' per-clone cost, for a site whose CI clones only that repo:
cores = 2.78/s x CPU s per clone; network = 2.78/s x MB per clone. With clone sharing, the cost depends on how many clones of one
commit arrive together (${n.stampede} here); see the sizing note.

${tables.hourly}
${
  tables.stores
    ? `
**What Redis and PostgreSQL see.** The whole stack under PM2 as \`npm start\` runs it (proxy, supervisor, ${layout(stackLayout)} workers), with
REDIS_URL and DATABASE_URL pointing at a redis-server and a PostgreSQL cluster of the bench's own (nothing else talks to them), for
${n['store-seconds']} s idle and ${n['store-seconds']} s while ${n.cloners} loops clone demo-git and demo-hg through the proxy. Redis commands
from INFO commandstats deltas (the bench's own INFO and MONITOR left out), split by the process that sent them with MONITOR (each
client connection mapped to its PM2 app through /proc/net/tcp and /proc/<pid>/fd; "in scripts" are commands run inside Lua
scripts); Redis CPU from INFO cpu; PostgreSQL rows inserted + updated + deleted from pg_stat_user_tables, commits from
pg_stat_database, CPU of the postmaster and its backends from /proc.

${tables.stores}

${notes.map((note) => `- ${note}`).join('\n')}
`
    : ''
}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2))
    .catch((error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error);
      process.exitCode = 1;
    })
    // PM2's client can keep the event loop alive after its daemon is gone
    .finally(() => process.exit());
}
