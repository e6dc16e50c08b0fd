// Rolling recycle: the whole stack under PM2 (proxy, supervisor, web/clone/bot pools, as
// `npm start` runs it, via test/helpers/fleet-stack.ts with a private PM2_HOME), steady mixed
// load (browsing users, human git/hg clones, bot clones), and every pool rolled twice through the
// supervisor API (POST /api/pools/<pool>/roll). Counts failed requests and broken clones (target 0).
//   npm run bench -- rolling-recycle [--users 20] [--think-ms 2000] [--cloners 2] [--bot-cloners 1] [--rolls 2] [--repo-mb 8] [--no-doc]
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFleetStack, type FleetStack } from '../test/helpers/fleet-stack.ts';
import { loadAverage, machineInfo, machineLine, positiveFlags, writeDocSection } from './fleet/doc.ts';
import { largeRepos } from './fleet/repos.ts';
import { installCleanup, stopAll } from './lib/processes.ts';
import { Progress } from './lib/progress.ts';
import { fixed, formatTable, thousands } from './lib/table.ts';
import { startMixedLoad, type MixedLoadResult } from './rolling/load.ts';

const HEADING = '## Rolling recycle (bench/rolling-recycle)';
const BOT_TOKEN = 'bench-rolling-bot-token-0123456789';
const POOLS = ['web', 'clone', 'bot'];

interface Roll {
  pool: string;
  round: number;
  workers: string[];
  seconds: number;
  ok: boolean;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: 'string', default: '20' },
      'think-ms': { type: 'string', default: '2000' },
      cloners: { type: 'string', default: '2' },
      'bot-cloners': { type: 'string', default: '1' },
      rolls: { type: 'string', default: '2' },
      'repo-mb': { type: 'string', default: '8' },
      'roll-timeout': { type: 'string', default: '150' },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  return { n: positiveFlags(values, ['users', 'think-ms', 'cloners', 'bot-cloners', 'rolls', 'repo-mb', 'roll-timeout'] as const), writeDoc: !values['no-doc'] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rolls a pool and waits until every worker it queued has been restarted and is ready again. */
async function roll(stack: FleetStack, pool: string, round: number, timeoutSec: number): Promise<Roll> {
  const before = new Map((await stack.fleet()).map((worker) => [worker.name, worker.pid]));
  const started = performance.now();
  const response = await stack.api('POST', `/api/pools/${pool}/roll`);
  if (response.status !== 202) throw new Error(`roll ${pool}: HTTP ${response.status} ${JSON.stringify(response.body)}`);
  const workers = (response.body as { queued: string[] }).queued;
  const deadline = Date.now() + timeoutSec * 1000;
  for (;;) {
    const fleet = await stack.fleet().catch(() => []);
    const done = workers.every((name) => fleet.some((worker) => worker.name === name && worker.state === 'ready' && worker.pid !== before.get(name)));
    if (done || Date.now() > deadline) return { pool, round, workers, seconds: (performance.now() - started) / 1000, ok: done };
    await sleep(250);
  }
}

export async function main(argv: string[]): Promise<void> {
  const { n, writeDoc } = parse(argv);
  installCleanup();
  const machine = machineInfo();
  const date = new Date();
  process.env.LOG_LEVEL ??= 'warn';
  const progress = new Progress(3 + n.rolls * POOLS.length);
  let stack: FleetStack | undefined;
  try {
    const repos = await largeRepos(n['repo-mb'], () => process.stderr.write(`generating ${n['repo-mb']} MB git and hg repositories...\n`));
    progress.start('starting the stack under PM2 (proxy, supervisor, web 2, clone 2, bot 2)');
    stack = await startFleetStack({
      pools: {
        web: { instances: 2, queue: { max: 200, timeoutMs: 60_000 }, drainTimeoutSec: 60 },
        clone: { instances: 2, queue: { max: 100, timeoutMs: 180_000 }, drainTimeoutSec: 120 },
        bot: { instances: 2, queue: { max: 100, timeoutMs: 180_000 }, drainTimeoutSec: 120 },
      },
      proxy: { debugHeaders: false },
      bots: { tokens: [BOT_TOKEN] },
      worker: { repos },
    });
    progress.done();
    progress.start('steady load, 5 s before the first roll');
    const load = startMixedLoad({
      origin: stack.proxyUrl,
      users: n.users,
      thinkMs: n['think-ms'],
      humanCloners: n.cloners,
      botCloners: n['bot-cloners'],
      botToken: BOT_TOKEN,
      cloneDeadlineMs: 240_000,
      maxSec: 420,
    });
    const ticker = setInterval(() => {
      const c = load.counts();
      progress.update(`pages ${c.pages} (${c.pageErrors} failed), clones ${c.clones} (${c.cloneFailures} failed)`);
    }, 500);
    await sleep(5000);
    progress.done();
    const rolls: Roll[] = [];
    for (let round = 1; round <= n.rolls; round++) {
      for (const pool of POOLS) {
        progress.start(`roll ${pool} (round ${round})`);
        const result = await roll(stack, pool, round, n['roll-timeout']);
        rolls.push(result);
        progress.done(`${result.workers.join(', ')} restarted in ${fixed(result.seconds, 1)} s${result.ok ? '' : ' (NOT finished by the timeout)'}`);
      }
    }
    progress.start('steady load, 5 s after the last roll, then waiting for clones in flight');
    await sleep(5000);
    const result = await load.stop();
    clearInterval(ticker);
    progress.done();
    const events = await stack.api('GET', `/api/events?since=${date.toISOString()}`).catch(() => undefined);
    report(rolls, result, n, machineLine(machine, [], loadAverage()), date, argv, writeDoc, events?.body);
  } finally {
    await stack?.stop();
    await stopAll();
  }
}

function report(rolls: Roll[], result: MixedLoadResult, n: ReturnType<typeof parse>['n'], machine: string, date: Date, argv: string[], writeDoc: boolean, events: unknown): void {
  const rollTable = formatTable(
    [{ header: 'pool' }, { header: 'round', align: 'right' }, { header: 'workers restarted' }, { header: 'seconds', align: 'right' }],
    rolls.map((r) => [r.pool, String(r.round), `${r.workers.join(', ')}${r.ok ? '' : ' (not all by the timeout)'}`, fixed(r.seconds, 1)]),
  );
  const human = result.clones.filter((clone) => !clone.bot);
  const bot = result.clones.filter((clone) => clone.bot);
  const failed = (list: typeof result.clones) => list.filter((clone) => !clone.ok).length;
  const loadTable = formatTable(
    [{ header: 'traffic' }, { header: 'done', align: 'right' }, { header: 'failed', align: 'right' }, { header: 'p50', align: 'right' }, { header: 'p99', align: 'right' }],
    [
      ['browser page loads (page + subresources)', thousands(result.browsing.pages), thousands(result.browsing.errors), `${fixed(result.browsing.p50Ms, 0)} ms`, `${fixed(result.browsing.p99Ms, 0)} ms`],
      ['HTTP requests of those page loads', thousands(result.requests), thousands(result.browsing.errors ? Number.NaN : 0), '', ''],
      ['human clones (git and hg, alternating)', thousands(human.length), thousands(failed(human)), '', ''],
      ['bot clones (git, bot token)', thousands(bot.length), thousands(failed(bot)), '', ''],
    ],
  );
  const list = (events as { events?: { kind?: string }[] } | undefined)?.events;
  const recycles = Array.isArray(list) ? list.filter((event) => event.kind === 'recycle').length : undefined;
  const allRolled = rolls.every((r) => r.ok);
  const zero = result.browsing.errors === 0 && failed(result.clones) === 0;
  const samples = [...result.browsing.errorSamples, ...new Set(result.clones.filter((c) => !c.ok).map((c) => `${c.kind}: ${c.error}`))].slice(0, 4);
  const verdict = `${zero && allRolled ? 'met' : '**NOT met**'}: ${result.browsing.errors} failed page loads and ${failed(result.clones)} broken clones while ${rolls.filter((r) => r.ok).length} of ${rolls.length} rolls completed (target: 0 failed requests, every pool rolled ${n.rolls} times)${samples.length ? `; errors: ${samples.map((s) => `"${s}"`).join(', ')}` : ''}.`;
  console.log(`\n${rollTable}\n\n${loadTable}\n\n- ${verdict}`);
  if (!writeDoc) return;
  writeDocSection(
    HEADING,
    `Generated by \`npm run bench -- rolling-recycle${argv.length ? ` ${argv.join(' ')}` : ''}\` (\`bench/rolling-recycle.ts\`) on ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC. Re-running replaces this section.

${machine}

**Setup.** The whole stack as \`npm start\` runs it, under a private PM2 daemon (test/helpers/fleet-stack.ts): proxy, supervisor and
the pools web (2), clone (2) and bot (2) of reference workers over the ${n['repo-mb']} MB big-git / big-hg repos. **Load**, steady from 5 s before
the first roll to 5 s after the last: ${n.users} simulated browser users (pages and their subresources, ${n['think-ms']} ms mean think time),
${n.cloners} human clone loops (git and hg alternating) and ${n['bot-cloners']} bot clone loop (git with \`X-Switchyard-Bot-Token\`), all through the proxy.
Every pool is rolled ${n.rolls} times, one pool after the other (\`POST /api/pools/<pool>/roll\`, the call behind \`npx switchyard roll\`); a roll
is done when every worker it queued runs under a new pid and is ready. A clone counts as broken if git/hg exits non-zero (both verify
what they receive: git's index-pack checks every object, hg the bundle).${recycles === undefined ? '' : ` Recycle events recorded by the supervisor: ${recycles}.`}

${rollTable}

${loadTable}

**Verdict**: ${verdict}
`,
  );
  console.log(`\nwrote ${HEADING.slice(3)} in docs/benchmarks.md`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  });
}
