import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ChildProcesses } from '../../../worker/children.ts';
import { createLargeGitRepo, createLargeHgRepo } from '../../../worker/seed/large-repos.ts';
import { startPausedClone as pausedClone, type PausedClone } from '../../helpers/paused-clone.ts';
import { descendantsOf, removeDir, run, startWorker, tempDir, waitFor, type RunningWorker } from '../../helpers/worker-harness.ts';

// A clone whose client stops reading, goes away, or is still running when the worker is told to
// stop. The repositories hold 48 MB of random bytes, far more than socket buffers, so a client
// that does not read really does hold the git/hg child mid-stream.

const CONTENT_BYTES = 48 * 1024 * 1024;
let data: string;
let repos: string;
let gitHead: string;
let hgHead: string;

before(async () => {
  data = await tempDir();
  repos = path.join(data, 'repos');
  const children = new ChildProcesses();
  await createLargeGitRepo(children, path.join(repos, 'big-git'), CONTENT_BYTES, 2);
  await createLargeHgRepo(children, path.join(repos, 'big-hg'), CONTENT_BYTES, 2);
  gitHead = (await run('git', ['--git-dir', path.join(repos, 'big-git'), 'rev-parse', 'main'])).stdout.trim();
  hgHead = (await run('hg', ['--repository', path.join(repos, 'big-hg'), 'log', '-r', 'tip', '-T', '{node}'])).stdout.trim();
});

after(async () => {
  await removeDir(data);
});

/** Starts a clone-sized response, reads its first chunk and then stops reading. */
function startPausedClone(worker: RunningWorker, kind: 'git' | 'hg'): Promise<PausedClone> {
  return pausedClone(worker.port, kind, kind === 'git' ? { repo: 'big-git', head: gitHead } : { repo: 'big-hg', head: hgHead });
}

async function procStat(pid: number): Promise<string> {
  return readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
}

/** Running, or a zombie still waiting for a parent other than init. */
async function stillOurs(pid: number): Promise<boolean> {
  const stat = await procStat(pid);
  if (stat === '') return false;
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return !(state === 'Z' && ppid === '1');
}

async function vcsChildrenOf(worker: RunningWorker) {
  return (await descendantsOf(worker.process.pid!)).filter((proc) => proc.command !== 'node');
}

test('git: a client that disconnects mid-clone leaves no child within a second, and no zombie', async () => {
  const worker = await startWorker({ data, repos });
  try {
    const clone = await startPausedClone(worker, 'git');
    const children = await vcsChildrenOf(worker);
    assert.ok(children.length > 0, 'the clone has a running child');
    clone.req.destroy();
    // every process of the clone, grandchildren included, must be gone: the worker reaps its
    // children; a grandchild whose parent died first belongs to init (ppid 1), not to us
    const gone = await waitFor(async () => (await Promise.all(children.map((child) => stillOurs(child.pid)))).every((ours) => !ours), 1000);
    assert.ok(gone, `children left: ${JSON.stringify(await Promise.all(children.map((child) => procStat(child.pid))))}`);
    assert.deepEqual(await vcsChildrenOf(worker), []);
    const health = await worker.health();
    assert.equal(health.children, 0);
    assert.equal(health.inflight, 0);
  } finally {
    assert.equal(await worker.stop(), 0);
  }
});

/** How many threads a process runs: the hgweb server runs one per request it is answering. */
async function threadCount(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/task`)).length;
}

test('hg: a client that disconnects mid-clone ends its hgweb request within a second; the hgweb server serves on', async () => {
  const worker = await startWorker({ data, repos });
  try {
    assert.equal((await fetch(`${worker.url}/big-hg?cmd=capabilities`)).status, 200);
    const [server] = await vcsChildrenOf(worker);
    assert.ok(server, 'the worker runs its hgweb server');
    // idle, it runs its main thread and the one that watches its stdin
    const idleThreads = 2;
    assert.ok(await waitFor(async () => (await threadCount(server.pid)) === idleThreads, 1000), 'the hgweb server is idle');
    const clone = await startPausedClone(worker, 'hg');
    assert.ok((await threadCount(server.pid)) > idleThreads, 'the clone runs in the hgweb server');
    clone.req.destroy();
    assert.ok(await waitFor(async () => (await threadCount(server.pid)) === idleThreads, 1000), 'the hgweb request ended');
    assert.deepEqual((await vcsChildrenOf(worker)).map((proc) => proc.pid), [server.pid]);
    const health = await worker.health();
    assert.equal(health.children, 1);
    assert.equal(health.inflight, 0);
    assert.equal((await fetch(`${worker.url}/big-hg?cmd=capabilities`)).status, 200);
  } finally {
    assert.equal(await worker.stop(), 0);
  }
});

test('health answers and other app requests wait while a clone holds the app lock', async () => {
  const worker = await startWorker({ data, repos });
  try {
    const clone = await startPausedClone(worker, 'git');
    let pageDone = false;
    const pageRequest = fetch(`${worker.url}/`).then((response) => {
      pageDone = true;
      return response.status;
    });
    assert.ok(await waitFor(async () => (await worker.health()).inflight === 2, 5000), 'both requests in flight');
    assert.equal(pageDone, false, 'the page waits for the clone (one app request at a time)');
    const size = await clone.finish();
    assert.ok(size > CONTENT_BYTES, `pack of ${size} bytes`);
    assert.equal(await pageRequest, 200);
  } finally {
    assert.equal(await worker.stop(), 0);
  }
});

test('graceful shutdown lets a running clone finish, then exits 0', async () => {
  const worker = await startWorker({ data, repos, worker: { shutdownTimeoutMs: 120_000 } });
  const clone = await startPausedClone(worker, 'hg');
  worker.process.kill('SIGTERM');
  // the listener closes at once; the clone in flight is not cut
  assert.ok(await waitFor(() => fetch(`${worker.url}/_worker/health`).then(() => false, () => true), 5000), 'stopped accepting');
  const size = await clone.finish();
  assert.ok(size > CONTENT_BYTES, `bundle of ${size} bytes`);
  assert.equal(await worker.stop('SIGCONT'), 0); // SIGCONT: only wait; a second SIGTERM would exit at once
});

test('shutdown timeout: a stuck clone is cut, its children killed and reaped, exit 0', async () => {
  const worker = await startWorker({ data, repos, worker: { shutdownTimeoutMs: 500 } });
  await startPausedClone(worker, 'git');
  const children = await vcsChildrenOf(worker);
  assert.ok(children.length > 0);
  assert.equal(await worker.stop('SIGTERM'), 0);
  const gone = await waitFor(async () => (await Promise.all(children.map((child) => stillOurs(child.pid)))).every((ours) => !ours), 1000);
  assert.ok(gone, `children left: ${JSON.stringify(await Promise.all(children.map((child) => procStat(child.pid))))}`);
});

test("PM2's shutdown message stops the worker gracefully", async () => {
  const worker = await startWorker({ data, repos });
  worker.process.send('shutdown');
  assert.equal(await worker.stop('SIGCONT'), 0);
});
