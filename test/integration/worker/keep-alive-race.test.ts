import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startProxy, type StartedProxy } from '../../../proxy/testing.ts';
import { ChildProcesses } from '../../../worker/children.ts';
import { createLargeGitRepo, createLargeHgRepo } from '../../../worker/seed/large-repos.ts';
import { startPausedClone } from '../../helpers/paused-clone.ts';
import { readAtRate } from '../../helpers/read-at-rate.ts';
import { removeDir, run, startWorker, tempDir, type RunningWorker } from '../../helpers/worker-harness.ts';

// The stampede's 502s (docs/benchmarks.md): a clone read slowly through the proxy, and a real
// git/hg clone queued behind it for the same worker. The worker had finished writing the slow
// response long before the proxy read its tail out of the socket buffers, so its keep-alive
// timeout (5 s, the default) closed the connection just as the proxy sent the queued request on
// it: that clone got 502. Large responses now end their connection, so the queued request gets
// a new one. The repositories hold more than the socket buffers between the test, the proxy and
// the worker (several MB each on loopback), so the worker's side really holds a tail. Bounded:
// about 20 s per case.

const CONTENT_BYTES = 24 * 1024 * 1024;
const SLOW_READ_BYTES_PER_SEC = 2 * 1024 * 1024;
/** the worker's default keep-alive timeout (worker.keepAliveTimeoutMs) */
const WORKER_KEEP_ALIVE_MS = 5000;
let data: string;
let repos: string;
let work: string;
let worker: RunningWorker;
let proxy: StartedProxy;
const heads: Record<'git' | 'hg', string> = { git: '', hg: '' };

async function headOf(kind: 'git' | 'hg', dir: string): Promise<string> {
  const args = kind === 'git' ? ['--git-dir', dir, 'rev-parse', 'main'] : ['--repository', dir, 'log', '-r', 'tip', '-T', '{node}'];
  return (await run(kind, args)).stdout.trim();
}

before(async () => {
  data = await tempDir();
  repos = path.join(data, 'repos');
  work = await tempDir('switchyard-keep-alive-race-');
  const children = new ChildProcesses();
  await createLargeGitRepo(children, path.join(repos, 'big-git'), CONTENT_BYTES, 2);
  await createLargeHgRepo(children, path.join(repos, 'big-hg'), CONTENT_BYTES, 2);
  heads.git = await headOf('git', path.join(repos, 'big-git'));
  heads.hg = await headOf('hg', path.join(repos, 'big-hg'));
  worker = await startWorker({ data, repos });
  const target = [`127.0.0.1:${worker.port}`];
  // one worker behind every lane, one request at a time: the second client waits for the first
  const queue = { queue: { timeoutMs: 120_000 } };
  proxy = await startProxy({ pools: { web: target, clone: target }, config: { pools: { web: queue, clone: queue } } });
});

after(async () => {
  await proxy?.close();
  if (worker) assert.equal(await worker.stop(), 0);
  await removeDir(data);
  await removeDir(work);
});

/** When the worker stops working on the request in flight (its response is all in socket buffers). */
async function workerIdleAt(timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await worker.health()).inflight === 0) return Date.now();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the worker was still busy after ${timeoutMs} ms`);
}

/**
 * Reads the response slowly until the worker is done with it (all of it in socket buffers), then
 * not at all for longer than the worker's keep-alive timeout, then the tail at full speed: what a
 * proxy pacing a slow client does, made certain. Resolves with the bytes read.
 */
async function readTailLongAfterWorkerIsDone(res: IncomingMessage): Promise<number> {
  const reader = readAtRate(res, SLOW_READ_BYTES_PER_SEC);
  await workerIdleAt();
  reader.stop();
  await new Promise((resolve) => setTimeout(resolve, WORKER_KEEP_ALIVE_MS + 1000));
  let bytes = reader.bytes;
  res.on('data', (chunk: Buffer) => (bytes += chunk.length));
  res.resume();
  await once(res, 'end');
  assert.ok(res.complete, 'the slow response arrived whole');
  return bytes;
}

for (const kind of ['hg', 'git'] as const) {
  test(`${kind}: a clone queued behind a clone whose tail is read late gets a working connection (no 502)`, async () => {
    const repo = `big-${kind}`;
    const slow = await startPausedClone(proxy.port, kind, { repo, head: heads[kind] });
    const slowDone = readTailLongAfterWorkerIsDone(slow.res);
    // queued in the proxy until the slow response is over, then sent on the worker connection
    const target = path.join(work, `queued-${kind}`);
    const args = kind === 'git' ? ['clone', '-q', '--bare', `${proxy.url}/${repo}`, target] : ['clone', '-q', '-U', `${proxy.url}/${repo}`, target];
    const queued = run(kind, args).then(
      () => 'ok',
      (error: { stderr?: string; message: string }) => `failed: ${error.stderr || error.message}`,
    );
    assert.ok((await slowDone) > CONTENT_BYTES / 2);
    assert.equal(await queued, 'ok');
    assert.equal(await headOf(kind, target), heads[kind]);
  });
}

test('a page queued behind a large raw file whose tail is read late gets a working connection (no 502)', async () => {
  const file = (await run('git', ['--git-dir', path.join(repos, 'big-git'), 'ls-tree', '-r', '--name-only', 'main'])).stdout.split('\n')[0];
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    request(`${proxy.url}/big-git/raw/main/${file}`, resolve).on('error', reject).end();
  });
  assert.equal(res.statusCode, 200);
  const slowDone = readTailLongAfterWorkerIsDone(res);
  const page = fetch(`${proxy.url}/big-git`).then(async (response) => ({ status: response.status, body: await response.text() }));
  assert.equal(await slowDone, CONTENT_BYTES / 2);
  const answer = await page;
  assert.equal(answer.status, 200, answer.body.slice(0, 300));
});
