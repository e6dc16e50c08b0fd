import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { isClosed, openKeepAlive, rawExchange, request, sleep, statusOf, waitFor } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

const browserHeaders = { 'sec-fetch-dest': 'document', 'user-agent': 'Mozilla/5.0' };

describe('client keep-alive policy', () => {
  let app: AppProcess;
  const opened: net.Socket[] = [];
  const started: StartedProxy[] = [];

  before(async () => {
    app = await startApp('ka');
  });
  after(async () => {
    for (const socket of opened) socket.destroy();
    await Promise.all(started.map((proxy) => proxy.close()));
    await app.stop();
  });

  async function proxyWith(config: Record<string, unknown>) {
    const proxy = await startProxy({ pools: { web: [app.address] }, config });
    started.push(proxy);
    return proxy;
  }

  test('100 browsers x 8 idle keep-alive connections hold no worker slot; new clients are still served', async () => {
    const proxy = await proxyWith({
      proxy: { clients: { browser: { idleTimeoutMs: 60_000 }, maxConnectionsPerIp: 16 } },
      // A new client waits for no slot at all: a 250 ms queue timeout turns any wait behind an idle connection into a 503.
      pools: { web: { concurrency: 1, queue: { timeoutMs: 250 } } },
    });
    for (let client = 0; client < 100; client++) {
      const localAddress = `127.0.${Math.floor(client / 200) + 1}.${(client % 200) + 2}`;
      const sockets = await Promise.all(Array.from({ length: 8 }, () => openKeepAlive(proxy.port, '/', browserHeaders, localAddress)));
      opened.push(...sockets);
    }
    const counts = proxy.proxy.snapshot().connections;
    assert.equal(counts.byClass.browser.idle, 800);
    assert.equal(proxy.proxy.snapshot().pools[0].workers[0].inflight, 0, 'idle connections hold no slot');
    for (let i = 0; i < 20; i++) {
      const response = await request(`${proxy.url}/`, { localAddress: '127.0.9.9' });
      assert.equal(response.status, 200);
    }
    assert.equal(proxy.proxy.snapshot().pools[0].queueTimeouts, 0);
    assert.ok(opened.slice(-800).every((socket) => !isClosed(socket)), 'idle browsers were not disconnected under the limits');
    for (const socket of opened.splice(0)) socket.destroy();
  });

  test('idle connections close after their class idle timeout; clones may idle longer', async () => {
    const proxy = await proxyWith({ proxy: { clients: { browser: { idleTimeoutMs: 300 }, clone: { idleTimeoutMs: 5000 } } } });
    const browserSocket = await openKeepAlive(proxy.port, '/', browserHeaders);
    const cloneSocket = await openKeepAlive(proxy.port, '/r/info/refs?service=git-upload-pack', { 'user-agent': 'git/2.40' });
    opened.push(browserSocket, cloneSocket);
    await waitFor(() => isClosed(browserSocket), 'browser idle connection closed', 3000);
    assert.equal(isClosed(cloneSocket), false, 'the clone connection has its own, longer idle timeout');
  });

  test('a connection closes after maxRequestsPerSocket requests', async () => {
    const proxy = await proxyWith({ proxy: { clients: { page: { maxRequestsPerSocket: 3 } } } });
    const one = 'GET / HTTP/1.1\r\nHost: t\r\n\r\n';
    const raw = await rawExchange(proxy.port, one.repeat(5));
    const responses = raw.split(/(?=HTTP\/1\.1 )/).filter(Boolean);
    assert.equal(responses.length, 3, 'the proxy answered exactly three requests on the connection');
    assert.match(responses[2], /connection: close/i);
  });

  test('a client over maxConnectionsPerIp loses its oldest idle connection first', async () => {
    const proxy = await proxyWith({ proxy: { clients: { maxConnectionsPerIp: 3, page: { idleTimeoutMs: 60_000 } } } });
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 3; i++) {
      sockets.push(await openKeepAlive(proxy.port, '/', {}, '127.0.5.5'));
      await sleep(20);
    }
    opened.push(...sockets);
    const fourth = await openKeepAlive(proxy.port, '/', {}, '127.0.5.5');
    opened.push(fourth);
    await waitFor(() => isClosed(sockets[0]), 'the oldest idle connection was closed');
    assert.equal(isClosed(sockets[1]) || isClosed(sockets[2]) || isClosed(fourth), false);
    // another address is not affected by this one's limit
    assert.equal((await request(`${proxy.url}/`, { localAddress: '127.0.5.6' })).status, 200);
  });

  test('a client whose connections are all busy gets 503 for one more', async () => {
    const proxy = await proxyWith({ proxy: { clients: { maxConnectionsPerIp: 2 } }, pools: { web: { concurrency: 4 } } });
    const busy = [request(`${proxy.url}/slow?ms=800`, { localAddress: '127.0.6.6' }), request(`${proxy.url}/slow?ms=800`, { localAddress: '127.0.6.6' })];
    await waitFor(() => proxy.proxy.snapshot().inflight === 2, 'two requests in flight');
    const raw = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: t\r\n\r\n', { localAddress: '127.0.6.6' });
    assert.equal(statusOf(raw), 503);
    assert.match(raw, /Retry-After: 1/i);
    assert.deepEqual((await Promise.all(busy)).map((response) => response.status), [200, 200]);
  });

  test('under overload idle connections are closed sooner', async () => {
    const proxy = await proxyWith({
      proxy: { clients: { browser: { idleTimeoutMs: 60_000 }, maxConnectionsPerIp: 0, overload: { connections: 20, idleTimeoutMs: 200 } } },
    });
    const calm = await openKeepAlive(proxy.port, '/', browserHeaders);
    opened.push(calm);
    await sleep(400);
    assert.equal(isClosed(calm), false, 'below the overload mark the normal idle timeout applies');
    const crowd = await Promise.all(Array.from({ length: 25 }, () => openKeepAlive(proxy.port, '/', browserHeaders)));
    opened.push(...crowd);
    assert.equal(proxy.proxy.snapshot().connections.overloaded || isClosed(calm), true);
    await waitFor(() => isClosed(calm), 'the long-idle connection was shed under overload', 3000);
    await waitFor(() => proxy.proxy.snapshot().connections.total < 20, 'idle connections trimmed below the overload mark', 3000);
  });
});

describe('upstream keep-alive', () => {
  let upstream: http.Server;
  let address: string;
  /** the worker connections that carried proxied requests (health checks use their own) */
  const used = new Set<net.Socket>();
  const open = () => [...used].filter((socket) => !socket.destroyed).length;

  before(async () => {
    upstream = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      if (req.url?.startsWith('/ka')) used.add(req.socket);
      res.end('ok');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
  });
  after(() => upstream.close());

  test('reuses a worker connection while it is fresh and closes it after the idle timeout', async () => {
    const proxy = await startProxy({ pools: { web: [address] }, config: { proxy: { upstream: { idleSocketTimeoutMs: 600 } } } });
    try {
      assert.equal((await request(`${proxy.url}/ka1`)).status, 200);
      await sleep(100);
      assert.equal((await request(`${proxy.url}/ka2`)).status, 200);
      assert.equal(used.size, 1, 'a second request within the idle timeout opened a new worker connection');
      await waitFor(() => open() === 0, 'the idle worker connection was not closed', 3000);
      assert.equal((await request(`${proxy.url}/ka3`)).status, 200);
      assert.equal(used.size, 2);
    } finally {
      await proxy.close();
    }
  });
});
