import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { GatedRelay } from '../helpers/gated-relay.ts';
import { copyOfFixture, removeDir, run, startWorker, tempDir, type RunningWorker } from '../helpers/worker-harness.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

// The share stage wired into a real proxy in front of a real worker: identical git clones made
// while the first one's answer is held at a gate share that one worker answer; a later one is
// served from the completed spool file. (The broad suite is clone-sharing*.test.ts.)

let worker: RunningWorker;
let gate: GatedRelay;
let proxy: StartedProxy;
let data: string;
let repos: string;
let work: string;

before(async () => {
  ({ data, repos } = await copyOfFixture());
  work = await tempDir('switchyard-share-stage-');
  worker = await startWorker({ data, repos });
  gate = new GatedRelay(worker.port, { holds: /^POST \/demo-git\/git-upload-pack /m, afterBytes: 0 });
  await gate.start();
  const target = [`127.0.0.1:${gate.port}`];
  // ref advertisements go on while the first clone's answer is held
  const config = { pools: { clone: { concurrency: 4 }, bot: { concurrency: 4 } }, proxy: { accessLog: { format: 'json' } } };
  proxy = await startProxy({ pools: { web: [`127.0.0.1:${worker.port}`], clone: target, bot: target }, config });
});

after(async () => {
  await proxy?.close();
  await gate?.close();
  await worker?.stop();
  await removeDir(data);
  await removeDir(work);
});

const clone = (name: string) => run('git', ['-c', 'protocol.version=0', 'clone', '-q', '--bare', `${proxy.url}/demo-git`, path.join(work, name)], { timeoutMs: 120_000 });
const head = async (gitDir: string) => (await run('git', [`--git-dir=${gitDir}`, 'rev-parse', 'HEAD'])).stdout.trim();
const cloneSharing = () => proxy.proxy.snapshot().cloneSharing;

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** the cloneCache field of the access log's upload-pack (POST) lines, once there are `count` */
async function loggedResults(count: number): Promise<string[]> {
  let results: string[] = [];
  await until(async () => {
    const text = await readFile(proxy.config.proxy.accessLog.path!, 'utf8').catch(() => '');
    const lines = text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line));
    results = lines.filter((line) => line.method === 'POST').map((line) => line.cloneCache as string);
    return results.length >= count;
  });
  return results.sort();
}

test('identical git clones share one worker answer while it is produced, and a later one is a hit', async () => {
  const servedBefore = (await worker.health()).served;
  const first = clone('first');
  await until(() => gate.holding === 1);
  const followers = ['second', 'third', 'fourth'].map((name) => clone(name));
  await until(() => cloneSharing().waiting === 3);
  assert.deepEqual(cloneSharing().requests, { miss: 1, coalesced: 0, hit: 0, bypass: 0 });
  gate.open();
  await Promise.all([first, ...followers]);
  const source = await head(path.join(repos, 'demo-git'));
  for (const name of ['first', 'second', 'third', 'fourth']) {
    await run('git', [`--git-dir=${path.join(work, name)}`, 'fsck', '--full', '--no-progress']);
    assert.equal(await head(path.join(work, name)), source, name);
  }
  // four ref advertisements and one upload-pack: the worker produced the pack once
  assert.equal((await worker.health()).served - servedBefore, 5);
  assert.deepEqual(cloneSharing().requests, { miss: 1, coalesced: 3, hit: 0, bypass: 0 });

  await clone('later');
  await run('git', [`--git-dir=${path.join(work, 'later')}`, 'fsck', '--full', '--no-progress']);
  assert.equal((await worker.health()).served - servedBefore, 6, 'only the ref advertisement reached the worker');
  assert.deepEqual(cloneSharing().requests, { miss: 1, coalesced: 3, hit: 1, bypass: 0 });
  const metrics = await proxy.proxy.stats.registry.metrics();
  assert.match(metrics, /switchyard_clone_cache_requests_total\{vcs="git",result="hit"\} 1/);
  assert.match(metrics, /switchyard_clone_cache_requests_total\{vcs="hg",result="bypass"\} 0/);
  assert.match(metrics, /switchyard_clone_cache_entries 1/);
  assert.deepEqual(await loggedResults(5), ['coalesced', 'coalesced', 'coalesced', 'hit', 'miss']);
});

test('a reload turns sharing off and on: off, clones reach the worker alone and carry no result', async () => {
  const reloadWith = (cloneSharing: Record<string, unknown>) => {
    const tree = structuredClone(proxy.configTree) as { proxy: Record<string, unknown> };
    tree.proxy.cloneSharing = cloneSharing;
    writeFileSync(proxy.configFile, JSON.stringify(tree));
    const outcome = proxy.proxy.reloadConfig();
    assert.ok(outcome.ok, JSON.stringify(outcome));
  };
  gate.open();
  const before = cloneSharing().requests;
  const servedBefore = (await worker.health()).served;
  reloadWith({ enabled: false });
  await clone('off');
  assert.equal((await worker.health()).served - servedBefore, 2, 'the ref advertisement and the pack, from the worker');
  assert.deepEqual(cloneSharing().requests, before, 'not counted while off');
  reloadWith({ enabled: true });
  await clone('on');
  assert.equal((await worker.health()).served - servedBefore, 3, 'on again: the pack is a hit');
  assert.equal(cloneSharing().requests.hit, before.hit + 1);
});
