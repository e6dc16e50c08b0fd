// Fair share (issue 18): no client, fast or slow, can monopolise a pool. Each test is one of the
// attacks that worked on the FIFO queue and the plain response window, through a real proxy
// in front of a real app process; clients come from their own loopback addresses.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { neverReads, request, settle, waitFor } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

const MB = 1024 * 1024;
const BROWSER = '127.0.1.1';
const GREEDY = '127.0.2.1';
const appStats = async (app: AppProcess) => JSON.parse((await request(`http://${app.address}/stats`)).body);
const proxyState = (proxy: StartedProxy) => proxy.proxy.state();



describe('fair share: slow readers, greedy clients and long responses cannot hold a pool', () => {
  let app: AppProcess;
  const proxies: StartedProxy[] = [];
  const sockets: net.Socket[] = [];

  before(async () => {
    app = await startApp('fair');
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    for (const proxy of proxies) await proxy.close();
    await app.stop();
  });

  const start = async (config: Record<string, unknown>) => {
    const proxy = await startProxy({ pools: { web: [app.address] }, config });
    proxies.push(proxy);
    return proxy;
  };

  test('clients that never read a large page do not hold the worker: it is spooled, and a browser is served', async () => {
    const proxy = await start({ pools: { web: { queue: { timeoutMs: 3000 } } } });
    const readers = ['127.0.3.1', '127.0.3.2'].map((address) => neverReads(proxy.port, `/big?bytes=${24 * MB}`, address));
    sockets.push(...readers);
    // The worker produced the whole response into the spool and is free again, readers still connected.
    await waitFor(async () => (await appStats(app)).inflight === 0 && proxyState(proxy).responseSpool.diskBytes > 0, 'the worker let go of the unread responses', 10_000);
    const page = await request(`${proxy.url}/?ms=1`, { localAddress: BROWSER });
    assert.equal(page.status, 200, 'a browser page is served while the slow readers stay connected');
    assert.ok(readers.every((socket) => !socket.destroyed), 'the slow readers were not cut: they only lost the worker');
    for (const socket of readers) socket.destroy();
    await waitFor(() => proxyState(proxy).responseSpool.diskBytes === 0, 'the spool is released when its readers leave');
  });

  test('past the lane spool share the worker waits for the client, and a client slower than the minimum rate is cut', async () => {
    const proxy = await start({
      proxy: { streaming: { minBytesPerSec: 64 * 1024, rateWindowMs: 500, sendTimeoutMs: 60_000 } },
      lanes: { page: { spoolBytes: MB } },
    });
    const socket = net.connect({ port: proxy.port, host: '127.0.0.1', localAddress: '127.0.3.3' });
    socket.on('error', () => {});
    let received = 0;
    const reading = setInterval(() => {
      // reads about 2 KiB a second: it makes progress (no send timeout) but far below the minimum
      const chunk = socket.read(200) as Buffer | null;
      if (chunk) received += chunk.length;
    }, 100);
    socket.pause();
    socket.write(`GET /big?bytes=${64 * MB} HTTP/1.1\r\nHost: t\r\n\r\n`);
    try {
      await waitFor(async () => (await appStats(app)).inflight === 1, 'the worker is producing');
      // The client is still reading what its kernel buffers hold when the proxy gives up on it;
      // what shows the cut is the worker: 64 MB past a 1 MB spool share would hold it for minutes.
      await waitFor(async () => (await appStats(app)).inflight === 0, 'the worker was freed by cutting the slow client', 15_000);
      assert.ok(received > 0 && received < 16 * MB, `the client read ${received} bytes`);
    } finally {
      clearInterval(reading);
      socket.destroy();
    }
  });

  test("a worker past its lane's response timeout: 504 before headers, a cut response after, and the worker is freed", async () => {
    const proxy = await start({ lanes: { page: { responseTimeoutMs: 600 } } });
    const beforeHeaders = await request(`${proxy.url}/slow?ms=5000`);
    assert.equal(beforeHeaders.status, 504);
    const started = Date.now();
    const afterHeaders = await settle(request(`${proxy.url}/drip?ms=5000`));
    assert.ok(afterHeaders.status === 0 || !afterHeaders.body.endsWith('\n'), 'the dripping response did not complete');
    assert.ok(Date.now() - started < 4000, 'the response was cut at the lane timeout, not when the worker finished');
    await waitFor(async () => (await appStats(app)).inflight === 0, 'the worker was freed');
    assert.equal((await request(`${proxy.url}/?ms=1`)).status, 200);
  });

  test('a greedy client holds one worker of two, waits behind its own requests, and past its queue share gets 429', async () => {
    const second = await startApp('fair-2');
    try {
      const proxy = await startProxy({ pools: { web: [app.address, second.address] }, config: { pools: { web: { perClient: { maxQueued: 5 } } } } });
      proxies.push(proxy);
      const greedy = Array.from({ length: 12 }, () => settle(request(`${proxy.url}/slow?ms=400`, { localAddress: GREEDY })));
      await waitFor(() => proxyState(proxy).pools[0].queueDepth === 5, 'the greedy client has its queue share waiting');
      const state = proxyState(proxy);
      assert.deepEqual(state.pools[0].topClients[0], { lane: 'page', client: GREEDY, holding: 1, queued: 5 });
      // the second worker is free for everyone else: a browser does not wait for the greedy client
      const started = Date.now();
      const page = await request(`${proxy.url}/?ms=1`, { localAddress: BROWSER });
      assert.equal(page.status, 200);
      assert.ok(Date.now() - started < 300, `the browser waited ${Date.now() - started} ms behind the greedy client`);
      const outcomes = await Promise.all(greedy);
      const refused = outcomes.filter((response) => response.status === 429);
      assert.equal(refused.length, 6, 'one in flight and five queued: the other six are refused at once');
      assert.ok(refused.every((response) => Number(response.headers['retry-after']) >= 1), 'a 429 says when to come back');
      assert.equal(outcomes.filter((response) => response.status === 200).length, 6);
      const apps = [await appStats(app), await appStats(second)];
      assert.ok(apps.every((stats) => stats.maxInflight <= 1));
    } finally {
      await second.stop();
    }
  });

  test('behind a trusted proxy the named client is the key; a trusted peer that names none is not one client', async () => {
    const second = await startApp('fair-3');
    try {
      const proxy = await startProxy({ pools: { web: [app.address, second.address] } });
      proxies.push(proxy);
      const inflight = async () => (await appStats(app)).inflight + (await appStats(second)).inflight;
      // 127.0.0.1 is a trusted proxy by default: the address it forwards for is the client
      const named = [1, 2].map(() => settle(request(`${proxy.url}/slow?ms=600`, { headers: { 'x-forwarded-for': '192.0.2.5' } })));
      await waitFor(async () => proxyState(proxy).pools[0].queueDepth === 1, 'the second request of 192.0.2.5 waits its turn');
      assert.equal(await inflight(), 1);
      await Promise.all(named);
      // without X-Forwarded-For each of the trusted peer's connections counts alone: both run at once
      const unnamed = [1, 2].map(() => settle(request(`${proxy.url}/slow?ms=600`)));
      await waitFor(async () => (await inflight()) === 2, 'both unnamed requests run at once');
      assert.ok((await Promise.all(unnamed)).every((response) => response.status === 200));
    } finally {
      await second.stop();
    }
  });

  test('a browser arriving behind 8 queued requests of a greedy client is served next, not tenth', async () => {
    const proxy = await start({});
    const order: string[] = [];
    const send = (label: string, localAddress: string) =>
      settle(request(`${proxy.url}/slow?ms=150`, { localAddress })).then((response) => {
        order.push(label);
        return response;
      });
    const greedy = Array.from({ length: 9 }, (_, index) => send(`greedy-${index}`, GREEDY));
    await waitFor(() => proxyState(proxy).pools[0].queueDepth === 8, 'the greedy client queued');
    const browser = send('browser', BROWSER);
    const responses = await Promise.all([...greedy, browser]);
    assert.ok(responses.every((response) => response.status === 200));
    // the greedy client has used worker time, the browser none: it goes right after the request in progress
    assert.equal(order.indexOf('browser'), 1, `served in the order ${order.join(', ')}`);
  });
});
