import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as cheerio from 'cheerio';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PgRepoRegistry } from '../../../worker/registry/pg-registry.ts';
import { FsRepoRegistry } from '../../../worker/registry/fs-registry.ts';
import { copyOfFixture, removeDir, run, startWorker } from '../../helpers/worker-harness.ts';

// The PostgreSQL registry and the Redis-shared cache, against the real servers.

const DATABASE_URL = process.env.WORKER_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.WORKER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let data: string;
let repos: string;

before(async () => {
  ({ data, repos } = await copyOfFixture());
});

after(async () => {
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  await db.query('DELETE FROM public.switchyard_repos WHERE root = $1', [repos]).catch(() => {});
  await db.end();
  await removeDir(data);
});

test('filesystem and PostgreSQL registries agree, and the PG one keeps the last head', async () => {
  const fsRegistry = new FsRepoRegistry(repos);
  const pgRegistry = new PgRepoRegistry(DATABASE_URL, repos);
  try {
    const fromFs = await fsRegistry.list();
    const fromPg = await pgRegistry.list();
    assert.deepEqual(fromPg.map(({ name, kind, description }) => ({ name, kind, description })), fromFs.map(({ name, kind, description }) => ({ name, kind, description })));
    assert.deepEqual(fromPg.map((repo) => repo.kind), ['git', 'hg']);
    assert.equal(await pgRegistry.get('no-such-repo'), undefined);
    assert.equal(await pgRegistry.get('../etc'), undefined);
    await pgRegistry.recordHead('demo-git', 'a'.repeat(40));
    assert.equal((await pgRegistry.get('demo-git'))?.lastHead, 'a'.repeat(40));
    await run('git', ['init', '-q', '--bare', path.join(repos, 'added-later')]);
    assert.ok((await pgRegistry.list()).some((repo) => repo.name === 'added-later'), 'new repositories appear');
    await removeDir(path.join(repos, 'added-later'));
    assert.ok(!(await pgRegistry.list()).some((repo) => repo.name === 'added-later'), 'removed repositories disappear');
  } finally {
    await pgRegistry.close();
  }
});

test('a worker with DATABASE_URL and REDIS_URL records heads in PostgreSQL and shares pages through Redis', async () => {
  const env = { DATABASE_URL, REDIS_URL };
  const first = await startWorker({ data, repos, env });
  const second = await startWorker({ data, repos, env });
  const redis = new Redis(REDIS_URL);
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    const summary = await fetch(`${first.url}/demo-git`);
    assert.equal(summary.status, 200);
    const $ = cheerio.load(await summary.text());
    assert.equal($('tr.commit').length, 20);
    const head = (await run('git', ['--git-dir', path.join(repos, 'demo-git'), 'rev-parse', 'main'])).stdout.trim();
    const row = await db.query('SELECT kind, last_head FROM public.switchyard_repos WHERE root = $1 AND name = $2', [repos, 'demo-git']);
    assert.deepEqual(row.rows[0], { kind: 'git', last_head: head });

    const keys = await redis.keys('switchyard:worker:v1:*summary:demo-git:*');
    assert.ok(keys.length > 0, 'the rendered summary is in Redis');
    const ttl = await redis.ttl(keys[0]);
    assert.ok(ttl > 0 && ttl <= 600, `TTL ${ttl}`);
    // the second worker finds the page in Redis: its local cache fills without rendering
    const before = await second.health();
    await fetch(`${second.url}/demo-git/tree/main/`);
    await fetch(`${first.url}/demo-hg/tree/tip/src`);
    const viaRedis = await fetch(`${second.url}/demo-hg/tree/tip/src`);
    assert.equal(viaRedis.status, 200);
    assert.ok((await second.health()).cacheBytes > before.cacheBytes);
  } finally {
    await db.end();
    redis.disconnect();
    assert.equal(await first.stop(), 0);
    assert.equal(await second.stop(), 0);
  }
});
