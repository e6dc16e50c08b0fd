import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { PrivatePostgres } from '../../helpers/private-postgres.ts';
import { copyOfFixture, removeDir, run, startWorker, tempDir, waitFor, type RunningWorker } from '../../helpers/worker-harness.ts';

// A worker whose PostgreSQL registry goes away: a private cluster that is really stopped, started
// and frozen (the machine's shared server is not touched). Pages and real git/hg clones must work
// throughout, from disk while PostgreSQL is out and from PostgreSQL again once it is back.

const OUTAGE_LOG = 'registry: PostgreSQL unreachable';
const RECOVERY_WAIT_MS = 60_000;
const REQUEST_BOUND_MS = 30_000;

let server: PrivatePostgres;
let data: string;
let repos: string;
let work: string;
let clones = 0;

before(async () => {
  server = await PrivatePostgres.create();
  ({ data, repos } = await copyOfFixture());
  work = await tempDir('switchyard-registry-outage-');
});

after(async () => {
  await server?.remove();
  await removeDir(data);
  await removeDir(work);
});

/**
 * Runs body against a worker with the private cluster as its registry; afterwards PostgreSQL is
 * running again (whatever body left it as) and the worker must have exited cleanly.
 */
async function withWorker(body: (worker: RunningWorker) => Promise<void>): Promise<void> {
  let worker: RunningWorker | undefined;
  let exitCode: number | null = null;
  try {
    worker = await startWorker({ data, repos, env: { DATABASE_URL: server.url(), LOG_LEVEL: 'info' } });
    await body(worker);
  } finally {
    server.thaw();
    await server.start().catch(() => {}); // refused when it is already running
    exitCode = (await worker?.stop()) ?? 0;
  }
  assert.equal(exitCode, 0, `the worker exits cleanly\n${worker?.output().slice(-3000)}`);
}

async function rowsInRegistry(): Promise<string[]> {
  const client = new pg.Client({ connectionString: server.url(), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const result = await client.query<{ name: string }>('SELECT name FROM public.switchyard_repos WHERE root = $1 ORDER BY name', [repos]);
    return result.rows.map((row) => row.name);
  } finally {
    await client.end();
  }
}

async function clearRegistry(): Promise<void> {
  const client = new pg.Client({ connectionString: server.url(), connectionTimeoutMillis: 5000 });
  await client.connect();
  await client.query('DELETE FROM public.switchyard_repos WHERE root = $1', [repos]).finally(() => client.end());
}

async function get(worker: RunningWorker, urlPath: string): Promise<{ status: number; body: string }> {
  const response = await fetch(worker.url + urlPath, { signal: AbortSignal.timeout(REQUEST_BOUND_MS) });
  return { status: response.status, body: await response.text() };
}

/** The repo list, both summaries, a tree page, a raw file, and a real git and hg clone. */
async function assertServesEverything(worker: RunningWorker, when: string): Promise<void> {
  const list = await get(worker, '/');
  assert.equal(list.status, 200, `${when}: repo list\n${list.body.slice(0, 300)}`);
  assert.match(list.body, /demo-git/);
  assert.match(list.body, /demo-hg/);
  for (const urlPath of ['/demo-git', '/demo-hg', '/demo-git/tree/main/', '/demo-hg/tree/tip/src', '/demo-git/raw/main/README.md']) {
    assert.equal((await get(worker, urlPath)).status, 200, `${when}: ${urlPath}`);
  }
  assert.equal((await get(worker, '/no-such-repo')).status, 404, `${when}: an unknown repository is still 404`);

  const n = clones++;
  const gitTarget = path.join(work, `git-${n}`);
  await run('git', ['clone', '-q', '--bare', `${worker.url}/demo-git`, gitTarget]);
  const head = (dir: string) => run('git', ['--git-dir', dir, 'rev-parse', 'main']).then((out) => out.stdout.trim());
  assert.equal(await head(gitTarget), await head(path.join(repos, 'demo-git')), `${when}: git clone`);

  const hgTarget = path.join(work, `hg-${n}`);
  await run('hg', ['clone', '-q', '-U', `${worker.url}/demo-hg`, hgTarget]);
  const tip = (dir: string) => run('hg', ['--repository', dir, 'log', '-r', 'tip', '--template', '{node}']).then((out) => out.stdout);
  assert.equal(await tip(hgTarget), await tip(path.join(repos, 'demo-hg')), `${when}: hg clone`);
}

const degraded = async (worker: RunningWorker) => (await worker.health()).registry.degraded;
const outageLines = (worker: RunningWorker) => worker.output().split('\n').filter((line) => line.includes(OUTAGE_LOG)).length;

test('PostgreSQL stopped under a running worker: pages and clones go on from disk, and PostgreSQL is used again once back', () =>
  withWorker(async (worker) => {
    await assertServesEverything(worker, 'before the outage');
    assert.deepEqual((await worker.health()).registry, { backend: 'postgresql', degraded: false });
    assert.deepEqual(await rowsInRegistry(), ['demo-git', 'demo-hg']);

    await server.stop('fast'); // every session ends, new connections are refused
    await assertServesEverything(worker, 'PostgreSQL stopped');
    await assertServesEverything(worker, 'PostgreSQL still stopped');
    const health = await worker.health();
    assert.equal(health.registry.degraded, true);
    assert.ok(health.registry.degradedSince && health.registry.lastError, JSON.stringify(health.registry));
    assert.equal(health.pool, 'clone', 'the health answer keeps its other fields');
    assert.equal(outageLines(worker), 1, 'the outage is logged once, not per request');

    await server.start();
    assert.ok(await waitFor(async () => !(await degraded(worker)), RECOVERY_WAIT_MS, 200), 'the worker went back to PostgreSQL');
    assert.match(worker.output(), /PostgreSQL is back/);
    // PostgreSQL is really consulted again: a page puts the rows it reads back in step with the disk
    await clearRegistry();
    assert.equal((await get(worker, '/')).status, 200);
    assert.deepEqual(await rowsInRegistry(), ['demo-git', 'demo-hg']);
    await assertServesEverything(worker, 'after PostgreSQL came back');
    assert.equal(outageLines(worker), 1);
  }));

test('a worker that starts while PostgreSQL is down serves the repositories on disk, then moves to PostgreSQL', async () => {
  await clearRegistry();
  await server.stop('immediate');
  await withWorker(async (worker) => {
    await assertServesEverything(worker, 'cold start, PostgreSQL down');
    assert.equal(await degraded(worker), true);

    await server.start();
    assert.ok(await waitFor(async () => !(await degraded(worker)), RECOVERY_WAIT_MS, 200), 'the worker went back to PostgreSQL');
    // the background retry registered what the worker found on disk
    assert.deepEqual(await rowsInRegistry(), ['demo-git', 'demo-hg']);
    await assertServesEverything(worker, 'PostgreSQL up after a cold start without it');
  });
});

test('a frozen PostgreSQL (connections and queries hang) costs one bounded wait, not a hung worker', () =>
  withWorker(async (worker) => {
    assert.equal((await get(worker, '/')).status, 200); // a pooled connection to PostgreSQL is open now
    server.freeze();
    await assertServesEverything(worker, 'PostgreSQL frozen');
    assert.equal(await degraded(worker), true);
    server.thaw();
    assert.ok(await waitFor(async () => !(await degraded(worker)), RECOVERY_WAIT_MS, 200), 'the worker went back to PostgreSQL');
    assert.equal((await get(worker, '/')).status, 200);
  }));
