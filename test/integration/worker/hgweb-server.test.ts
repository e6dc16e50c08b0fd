import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isLive } from '../../helpers/stack-processes.ts';
import { copyOfFixture, descendantsOf, removeDir, startWorker, waitFor, type RunningWorker } from '../../helpers/worker-harness.ts';

// The worker's one long-lived hgweb server (worker/http/hgweb-server.ts): started by the first hg
// request, started again after it died, gone with its worker however the worker ends, and a
// server that cannot start fails its request with a 503 instead of hanging it.

let data: string;
let repos: string;

before(async () => {
  ({ data, repos } = await copyOfFixture());
});
after(() => removeDir(data));

async function hgwebPids(worker: RunningWorker): Promise<number[]> {
  return (await descendantsOf(worker.process.pid!)).filter((proc) => proc.command !== 'node' && proc.state !== 'Z').map((proc) => proc.pid);
}

function capabilities(worker: RunningWorker): Promise<Response> {
  return fetch(`${worker.url}/demo-hg?cmd=capabilities`, { signal: AbortSignal.timeout(30_000) });
}

test('the first hg request starts one hgweb server, and later requests reuse it', async () => {
  const worker = await startWorker({ data, repos });
  try {
    assert.deepEqual(await hgwebPids(worker), [], 'nothing runs before the first hg request');
    const first = await capabilities(worker);
    assert.equal(first.status, 200);
    assert.match(await first.text(), /getbundle/);
    const [server] = await hgwebPids(worker);
    assert.ok(server);
    assert.equal((await capabilities(worker)).status, 200);
    assert.deepEqual(await hgwebPids(worker), [server]);
  } finally {
    assert.equal(await worker.stop(), 0);
  }
});

test('an hgweb server that died is started again by the next hg request', async () => {
  const worker = await startWorker({ data, repos });
  try {
    assert.equal((await capabilities(worker)).status, 200);
    const [server] = await hgwebPids(worker);
    process.kill(server, 'SIGKILL');
    assert.ok(await waitFor(() => !isLive(server), 2000), 'the hgweb server is gone');
    assert.equal((await capabilities(worker)).status, 200);
    const [successor] = await hgwebPids(worker);
    assert.ok(successor !== undefined && successor !== server, `a new hgweb server (${successor}, was ${server})`);
  } finally {
    assert.equal(await worker.stop(), 0);
  }
});

test('a SIGKILLed worker leaves no hgweb server behind', async () => {
  const worker = await startWorker({ data, repos });
  assert.equal((await capabilities(worker)).status, 200);
  const [server] = await hgwebPids(worker);
  assert.ok(server);
  await worker.stop('SIGKILL');
  assert.ok(await waitFor(() => !isLive(server), 2000), `hgweb server ${server} outlived its worker`);
});

test('an hgweb server that cannot start gets its request a 503, and the worker serves on', async () => {
  const worker = await startWorker({ data, repos, env: { SWITCHYARD_HG_PYTHON: '/bin/false' } });
  try {
    const response = await capabilities(worker);
    assert.equal(response.status, 503);
    assert.match(await response.text(), /Mercurial service is not available/);
    assert.equal((await capabilities(worker)).status, 503, 'the next request tries again');
    assert.equal((await fetch(`${worker.url}/_worker/health`)).status, 200);
    assert.match(worker.output(), /hgweb server exited before it listened/);
  } finally {
    assert.equal(await worker.stop(), 0);
  }
});
