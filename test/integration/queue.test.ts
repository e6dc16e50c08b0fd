import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { request, sleep, waitFor } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

const browser = { 'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate' };

describe('per-worker slots and the bounded, timed queue', () => {
  let app: AppProcess;
  let proxy: StartedProxy;

  before(async () => {
    app = await startApp('single');
    proxy = await startProxy({
      pools: { web: [app.address] },
      config: { pools: { web: { concurrency: 1, queue: { max: 3, timeoutMs: 1500 } } } },
    });
  });
  after(async () => {
    await proxy.close();
    await app.stop();
  });

  const stats = async () => JSON.parse((await request(`http://${app.address}/stats`)).body);
  const queueDepth = () => proxy.proxy.snapshot().pools[0].queueDepth;

  test('a single-threaded worker never gets two requests at once', async () => {
    const before = await stats();
    const responses = await Promise.all(Array.from({ length: 4 }, () => request(`${proxy.url}/slow?ms=150`)));
    assert.deepEqual(responses.map((response) => response.status), [200, 200, 200, 200]);
    const after = await stats();
    assert.equal(after.served - before.served, 4);
    assert.equal(after.maxInflight, 1, 'the worker saw concurrent requests');
  });

  test('a full queue answers 503 with Retry-After at once', async () => {
    const pending = Array.from({ length: 4 }, () => request(`${proxy.url}/slow?ms=600`));
    await waitFor(() => queueDepth() === 3, 'three requests queued');
    const rejected = await request(`${proxy.url}/slow?ms=600`);
    assert.equal(rejected.status, 503);
    assert.equal(rejected.headers['retry-after'], '2');
    assert.equal(rejected.headers['x-switchyard-lane'], 'page');
    assert.match(rejected.body, /queue full/);
    const statuses = (await Promise.all(pending)).map((response) => response.status);
    assert.deepEqual(statuses.sort(), [200, 200, 200, 503], 'the last queued request waited past the timeout');
  });

  test('a request waiting longer than queue.timeoutMs gets 503', async () => {
    const busy = request(`${proxy.url}/slow?ms=2500`);
    await waitFor(async () => (await stats()).inflight === 1, 'the worker is busy');
    const waited = await request(`${proxy.url}/`);
    assert.equal(waited.status, 503);
    assert.match(waited.body, /no worker free in time/);
    assert.ok(Number(waited.headers['retry-after']) >= 1);
    assert.equal((await busy).status, 200);
    assert.equal(proxy.proxy.snapshot().pools[0].queueTimeouts >= 1, true);
  });

  test('browser requests leave the queue before page requests that came first', async () => {
    const order: string[] = [];
    const busy = request(`${proxy.url}/slow?ms=1000`);
    await waitFor(async () => (await stats()).inflight === 1, 'the worker is busy');
    const page = request(`${proxy.url}/slow?ms=1`).then((response) => order.push(`page:${response.status}`));
    await waitFor(() => queueDepth() === 1, 'page queued');
    const browserRequest = request(`${proxy.url}/slow?ms=1`, { headers: browser }).then((response) => order.push(`browser:${response.status}`));
    await waitFor(() => queueDepth() === 2, 'browser queued');
    await Promise.all([busy, page, browserRequest]);
    assert.deepEqual(order, ['browser:200', 'page:200']);
  });

  test('a request body sent while the request waits in the queue reaches the worker whole, chunked or not', async () => {
    // Its own proxy with a long queue timeout: on a loaded machine the wait must never be what fails.
    const patient = await startProxy({ pools: { web: [app.address] }, config: { pools: { web: { concurrency: 1, queue: { max: 3, timeoutMs: 10_000 } } } } });
    const depth = () => patient.proxy.snapshot().pools[0].queueDepth;
    const chunks = Array.from({ length: 8 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const total = chunks.reduce((n, chunk) => n + chunk.length, 0);
    const received: Record<string, number> = {};
    try {
      for (const framing of ['chunked', 'content-length']) {
        await waitFor(async () => (await stats()).inflight === 0, 'the worker is idle');
        const busy = request(`${patient.url}/slow?ms=2500`);
        await waitFor(async () => (await stats()).inflight === 1, 'the worker is busy');
        const upload = new Promise<number>((resolve, reject) => {
          const headers = framing === 'chunked' ? {} : { 'content-length': String(total) };
          const req = http.request(`${patient.url}/echo`, { method: 'POST', agent: false, headers }, (res) => {
            let text = '';
            res.on('data', (data: Buffer) => (text += data));
            res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text).bodyBytes) : reject(new Error(`${framing} upload: ${res.statusCode} ${text}`))));
          });
          req.on('error', reject);
          // Every byte leaves while the request is still queued behind the busy worker.
          for (const chunk of chunks) req.write(chunk);
          req.end();
        });
        await waitFor(() => depth() === 1, `${framing} upload queued`);
        await sleep(300); // what the proxy would read (and, before the fix, drop) while the request waits
        assert.equal(depth(), 1, 'the upload was still queued while its body arrived');
        received[framing] = await upload;
        await busy;
      }
    } finally {
      await patient.close();
    }
    assert.deepEqual(received, { chunked: total, 'content-length': total });
  });

  test('a client that gives up while queued leaves the queue', async () => {
    const busy = request(`${proxy.url}/slow?ms=500`);
    await waitFor(async () => (await stats()).inflight === 1, 'the worker is busy');
    const servedBefore = (await stats()).served;
    const impatient = request(`${proxy.url}/slow?ms=1`, { timeoutMs: 100 }).catch((error: Error) => error);
    await waitFor(() => queueDepth() === 1, 'queued');
    assert.ok((await impatient) instanceof Error);
    await waitFor(() => queueDepth() === 0, 'the abandoned request left the queue');
    await busy;
    assert.equal((await stats()).served, servedBefore, 'the abandoned request still reached the worker');
  });
});
