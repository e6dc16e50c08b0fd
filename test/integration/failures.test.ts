import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { request, waitFor } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('worker failures: ejection, retries, timeouts, cut streams', () => {
  let stable: AppProcess;
  let flaky: AppProcess;
  let flakyPort: number;
  let proxy: StartedProxy;

  before(async () => {
    stable = await startApp('stable');
    flakyPort = await freePort();
    flaky = await startApp('flaky', flakyPort);
    proxy = await startProxy({
      pools: { web: [flaky.address, stable.address] },
      config: { proxy: { upstream: { responseTimeoutMs: 700 }, healthCheck: { intervalMs: 100 } } },
    });
  });
  after(async () => {
    await proxy.close();
    await Promise.all([stable.stop(), flaky.stop()]);
  });

  const workerState = (name: string) => proxy.proxy.snapshot().pools[0].workers.find((worker) => worker.name === name)!.state;

  test('a dead worker is ejected at once and its GETs are retried on another worker', async () => {
    await flaky.stop();
    const responses = [];
    for (let i = 0; i < 6; i++) responses.push(await request(`${proxy.url}/`));
    assert.deepEqual(responses.map((response) => response.status), [200, 200, 200, 200, 200, 200]);
    assert.ok(responses.every((response) => response.headers['x-app'] === 'stable'));
    assert.equal(workerState('web-0'), 'down');
  });

  test('a POST whose body streams from the client is never retried: 502', async () => {
    const deadPort = await freePort();
    const solo = await startProxy({
      pools: { web: [`127.0.0.1:${deadPort}`, stable.address] },
      config: { proxy: { healthCheck: { intervalMs: 60_000 }, clients: { page: { bodyBufferBytes: 0 } } } },
    });
    try {
      const pool = solo.proxy.pools.get('web')!;
      await waitFor(() => pool.upstreams[0].state === 'down', 'the first health check found the dead worker');
      const servedBefore = JSON.parse((await request(`http://${stable.address}/stats`)).body).served;
      pool.setState(pool.upstreams[0], 'ready'); // the proxy believes it alive, as right after a crash
      const response = await request(`${solo.url}/echo`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
      assert.equal(response.status, 502, 'a POST to a dead worker must fail, not be replayed');
      assert.equal(response.headers['x-switchyard-lane'], 'page');
      assert.match(response.body, /worker failed/);
      assert.equal(pool.upstreams[0].state, 'down', 'the refusing worker is ejected at once');
      const stats = JSON.parse((await request(`http://${stable.address}/stats`)).body);
      assert.equal(stats.served, servedBefore, 'the POST reached no other worker');
    } finally {
      await solo.close();
    }
  });

  test('a POST whose body the proxy read whole is sent to another worker when a connect is refused, once', async () => {
    const deadPort = await freePort();
    const solo = await startProxy({
      pools: { web: [`127.0.0.1:${deadPort}`, stable.address] },
      config: { proxy: { healthCheck: { intervalMs: 60_000 } } },
    });
    try {
      const pool = solo.proxy.pools.get('web')!;
      await waitFor(() => pool.upstreams[0].state === 'down', 'the first health check found the dead worker');
      const servedBefore = JSON.parse((await request(`http://${stable.address}/stats`)).body).served;
      pool.setState(pool.upstreams[0], 'ready');
      const body = 'x'.repeat(100_000);
      const response = await request(`${solo.url}/echo`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
      assert.equal(response.status, 200, 'a refused connect carried nothing: the buffered POST is safe to send elsewhere');
      assert.equal(JSON.parse(response.body).bodyBytes, body.length, 'the whole body, from its first byte');
      assert.equal(response.headers['x-app'], 'stable');
      assert.equal(pool.upstreams[0].state, 'down');
      const stats = JSON.parse((await request(`http://${stable.address}/stats`)).body);
      assert.equal(stats.served, servedBefore + 1, 'it reached the other worker once');
    } finally {
      await solo.close();
    }
  });

  test('a GET whose connects are refused is retried on each other worker until one answers', async () => {
    const [deadA, deadB] = [await freePort(), await freePort()];
    const solo = await startProxy({
      pools: { web: [`127.0.0.1:${deadA}`, `127.0.0.1:${deadB}`, stable.address] },
      config: { proxy: { healthCheck: { intervalMs: 60_000 } } },
    });
    try {
      const pool = solo.proxy.pools.get('web')!;
      await waitFor(() => pool.upstreams[0].state === 'down' && pool.upstreams[1].state === 'down', 'the first health check found both dead');
      pool.setState(pool.upstreams[0], 'ready');
      pool.setState(pool.upstreams[1], 'ready'); // both believed alive, as right after two crashes
      const response = await request(`${solo.url}/`);
      assert.equal(response.status, 200);
      assert.equal(response.headers['x-app'], 'stable');
      assert.deepEqual(pool.upstreams.map((upstream) => upstream.state), ['down', 'down', 'ready']);
    } finally {
      await solo.close();
    }
  });

  test('a worker that comes back is re-admitted by health checks', async () => {
    flaky = await startApp('flaky', flakyPort);
    await waitFor(() => workerState('web-0') === 'ready', 'web-0 re-admitted');
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(String((await request(`${proxy.url}/`)).headers['x-app']));
    assert.deepEqual(seen, new Set(['flaky', 'stable']));
  });

  test('a reset of a reused keep-alive socket is retried once, invisibly', async () => {
    const single = await startApp('single');
    const solo = await startProxy({ pools: { web: [single.address] } });
    try {
      assert.equal((await request(`${solo.url}/`)).status, 200); // opens the pooled upstream socket
      assert.equal((await request(`${solo.url}/arm-reset`)).status, 200);
      const response = await request(`${solo.url}/`);
      assert.equal(response.status, 200);
      const stats = JSON.parse((await request(`http://${single.address}/stats`)).body);
      assert.equal(stats.resets, 1, 'the worker really did reset the reused socket');
    } finally {
      await solo.close();
      await single.stop();
    }
  });

  test('a worker that sends no headers in time gives 504 and frees the slot', async () => {
    const response = await request(`${proxy.url}/hang`);
    assert.equal(response.status, 504);
    assert.match(response.body, /did not answer in time/);
    await waitFor(() => proxy.proxy.snapshot().pools[0].workers.every((worker) => worker.inflight === 0), 'slots freed');
  });

  test('a worker that resets mid-response cuts the client stream and frees the slot', async () => {
    const error = await new Promise<Error | undefined>((resolve) => {
      import('node:http').then(({ default: http }) => {
        http.get(`${proxy.url}/reset`, { agent: false }, (res) => {
          assert.equal(res.statusCode, 200);
          res.resume();
          res.on('end', () => resolve(undefined));
          res.on('error', resolve);
          res.on('aborted', () => resolve(new Error('aborted')));
        });
      });
    });
    assert.ok(error, 'the client must see the stream cut, not a clean end');
    await waitFor(() => proxy.proxy.snapshot().pools[0].workers.every((worker) => worker.inflight === 0), 'slots freed');
    assert.equal((await request(`${proxy.url}/`)).status, 200);
  });

  test('a worker response header with a control character gives 502 and frees the slot; obs-text passes', async () => {
    // A raw worker, since no HTTP library would write such a header.
    const raw = net.createServer((socket) => {
      socket.once('data', (data) => {
        const header = data.toString('latin1').startsWith('GET /control') ? 'X-Bad: a\x01b' : 'X-Obs: caf\xe9';
        socket.end(Buffer.from(`HTTP/1.1 200 OK\r\n${header}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`, 'latin1'));
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(raw.address() as net.AddressInfo).port}`;
    const solo = await startProxy({ pools: { web: [address] }, config: { proxy: { healthCheck: { intervalMs: 60_000 } } } });
    try {
      const bad = await request(`${solo.url}/control`);
      assert.equal(bad.status, 502);
      assert.equal(solo.proxy.pools.get('web')!.upstreams[0].inflight, 0, 'the slot was not freed');
      const web = solo.proxy.pools.get('web')!;
      web.setState(web.upstreams[0], 'ready'); // the failure ejected it; as the next health check would, take it back
      const obs = await request(`${solo.url}/obs`);
      assert.equal(obs.status, 200);
      assert.equal(obs.headers['x-obs'], 'caf\xe9');
    } finally {
      await solo.close();
      raw.close();
    }
  });

  test('a worker that dies mid-request gives 502, is ejected, and the proxy keeps serving', async () => {
    const victim = await startApp('victim');
    const solo = await startProxy({ pools: { web: [victim.address, stable.address] }, config: { proxy: { healthCheck: { intervalMs: 60_000 } } } });
    try {
      const pool = solo.proxy.pools.get('web')!;
      const crashed = await request(`${solo.url}/crash`); // round-robin starts at web-0, the victim
      assert.equal(crashed.status, 502);
      assert.equal(pool.upstreams[0].state, 'down');
      for (let i = 0; i < 3; i++) {
        const response = await request(`${solo.url}/`);
        assert.equal(response.status, 200);
        assert.equal(response.headers['x-app'], 'stable');
      }
    } finally {
      await solo.close();
      await victim.stop();
    }
  });
});
