import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { WebSocket } from 'ws';
import { startApp, startProxyProcess, type AppProcess, type ProxyProcess } from '../helpers/processes.ts';
import { openKeepAlive, rawConversation, rawExchange, request, sleep, statusOf, waitFor } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

const MB = 1024 * 1024;
const appStats = async (app: AppProcess) => JSON.parse((await request(`http://${app.address}/stats`)).body);
const bodyOf = (raw: string) => raw.slice(raw.indexOf('\r\n\r\n') + 4);

describe('request targets: nothing a client sends as a target reaches a parser unchecked', () => {
  let app: AppProcess;
  let proxy: ProxyProcess;

  before(async () => {
    app = await startApp('target');
    proxy = await startProxyProcess({ proxy: { host: '127.0.0.1', port: 0 }, pools: { web: { targets: [app.address] } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } });
  });
  after(async () => {
    await proxy.stop();
    await app.stop();
  });

  // Each of these once made http-proxy-3 throw from `new URL()` with nothing on the request path
  // to catch it: the process exited and PM2 restarted it, cutting every in-flight clone.
  for (const [name, head] of [
    ['an absolute-form target with a port past 65535', 'GET http://a:99999/ HTTP/1.1\r\nHost: t\r\n\r\n'],
    ['the same as a WebSocket upgrade', 'GET http://a:99999/ HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
    ['an unclosed IPv6 authority', 'GET http://[::1/ HTTP/1.1\r\nHost: t\r\n\r\n'],
    ['user information in the target', 'GET http://user:pw@t/ HTTP/1.1\r\nHost: t\r\n\r\n'],
    ['another scheme', 'GET ftp://t/ HTTP/1.1\r\nHost: t\r\n\r\n'],
    ['asterisk-form', 'OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n'],
  ] as const) {
    test(`${name}: 400, and the process stays up`, async () => {
      const before = (await appStats(app)).served;
      const raw = await rawExchange(proxy.port, head);
      assert.equal(statusOf(raw), 400, raw.slice(0, 200));
      assert.equal(proxy.child.exitCode, null, 'the proxy process is still running');
      assert.equal((await request(`${proxy.url}/`)).status, 200);
      assert.equal((await appStats(app)).served, before + 1, 'only the normal request reached the worker');
    });
  }

  test('an absolute-form target is served with its authority as Host (RFC 9112 3.2.2)', async () => {
    const raw = await rawExchange(proxy.port, 'GET http://example.test:8443/echo?x=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(raw), 200, raw.slice(0, 200));
    const echoed = JSON.parse(bodyOf(raw));
    assert.equal(echoed.url, '/echo?x=1');
    assert.equal(echoed.headers.host, 'example.test:8443');
  });

  test('the worker gets the path the proxy routed: dot segments resolved, unreserved escapes decoded', async () => {
    for (const [sent, seen] of [
      ['/a/./b/../../echo', '/echo'],
      ['/%65cho?q=%41', '/echo?q=%41'],
      ['/x\\..\\echo', '/echo'],
    ]) {
      const raw = await rawExchange(proxy.port, `GET ${sent} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(raw), 200, `${sent}: ${raw.slice(0, 200)}`);
      assert.equal(JSON.parse(bodyOf(raw)).url, seen, sent);
    }
  });

  test("the workers' own endpoints are not reachable through the public port, however the path is spelled", async () => {
    const before = (await appStats(app)).served;
    for (const path of ['/_worker/health', '/x/../_worker/health', '/%5Fworker/health', '/_WORKER/health', '/_worker%2Fhealth', 'http://t/_worker/health']) {
      const raw = await rawExchange(proxy.port, `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(raw), 404, `${path}: ${raw.slice(0, 200)}`);
    }
    assert.equal((await appStats(app)).served, before, 'none reached a worker');
  });

  test('the bot token (a CI secret) and Expect never reach a worker', async () => {
    const response = await request(`${proxy.url}/echo`, { headers: { 'x-switchyard-bot-token': 'ci-secret-123456', expect: '100-continue' }, method: 'POST', body: 'x' });
    assert.equal(response.status, 200);
    const { headers } = JSON.parse(response.body);
    assert.equal(headers['x-switchyard-bot-token'], undefined);
    assert.equal(headers.expect, undefined);
  });
});

describe('request bodies are read before they take a worker', () => {
  let apps: AppProcess[];
  let proxy: StartedProxy;

  before(async () => {
    apps = await Promise.all([startApp('body-a'), startApp('body-b')]);
    proxy = await startProxy({
      pools: { web: apps.map((app) => app.address) },
      config: {
        proxy: {
          bodies: { memoryBytes: 4096, minBytesPerSec: 1024, rateWindowMs: 1000, spoolTotalBytes: 8 * MB },
          clients: { page: { bodyBufferBytes: 4 * MB }, browser: { bodyBufferBytes: 4 * MB } },
        },
        pools: { web: { queue: { timeoutMs: 10_000 } } },
      },
    });
  });
  after(async () => {
    await proxy.close();
    await Promise.all(apps.map((app) => app.stop()));
  });

  const inflight = () => proxy.proxy.snapshot().pools[0].workers.reduce((sum, worker) => sum + worker.inflight, 0);

  test('bodies that trickle at 1 byte/s get 408 and never take a slot; pages are served meanwhile', async () => {
    const served = async () => (await Promise.all(apps.map(appStats))).reduce((sum, stats) => sum + stats.served, 0);
    const before = await served();
    const drips: NodeJS.Timeout[] = [];
    const trickles = Array.from({ length: 4 }, () =>
      rawConversation(
        proxy.port,
        (socket) => {
          socket.write('POST /demo-git HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n');
          drips.push(setInterval(() => socket.writable && socket.write('x'), 1000));
        },
        { timeoutMs: 15_000 },
      ),
    );
    await sleep(300);
    for (let i = 0; i < 10; i++) {
      assert.equal(inflight(), 0, 'no trickling body holds a worker');
      const page = await request(`${proxy.url}/`, { headers: { 'user-agent': 'Mozilla/5.0', accept: 'text/html' }, timeoutMs: 2000 });
      assert.equal(page.status, 200);
    }
    const answers = await Promise.all(trickles);
    drips.forEach(clearInterval);
    for (const raw of answers) {
      assert.equal(statusOf(raw), 408, raw.slice(0, 200));
      assert.match(raw, /too slowly/);
    }
    assert.equal(await served(), before + 10, 'only the pages reached a worker');
  });

  test('a body spilled to a temp file reaches the worker whole, as Content-Length, even when sent chunked', async () => {
    const body = Buffer.alloc(3 * MB, 7);
    const raw = await rawConversation(proxy.port, (socket) => {
      socket.write('POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let offset = 0; offset < body.length; offset += 100_000) {
        const piece = body.subarray(offset, offset + 100_000);
        socket.write(`${piece.length.toString(16)}\r\n`);
        socket.write(piece);
        socket.write('\r\n');
      }
      socket.write('0\r\n\r\n');
    });
    assert.equal(statusOf(raw), 200, raw.slice(0, 200));
    const echoed = JSON.parse(bodyOf(raw));
    const { createHash } = await import('node:crypto');
    assert.equal(echoed.bodyBytes, body.length);
    assert.equal(echoed.sha256, createHash('sha256').update(body).digest('hex'));
    assert.equal(echoed.headers['content-length'], String(body.length));
    assert.equal(echoed.headers['transfer-encoding'], undefined);
    assert.deepEqual(proxy.proxy.snapshot().bodies, { memoryBytes: 0, diskBytes: 0, clients: 0 }, 'memory and temp file given back');
  });

  test('bodies past the spool budget get 503 with Retry-After, and the budget comes back', async () => {
    const started = Array.from({ length: 2 }, () => {
      const socket = net.connect(proxy.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${4 * MB}\r\n\r\n`);
      socket.write(Buffer.alloc(3 * MB, 1));
      return socket;
    });
    await waitFor(() => proxy.proxy.snapshot().bodies.diskBytes >= 6 * MB - 8192, 'two bodies on disk');
    const refused = await rawConversation(proxy.port, (socket) => {
      socket.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${3 * MB}\r\n\r\n`);
      socket.write(Buffer.alloc(3 * MB, 2));
    });
    assert.equal(statusOf(refused), 503, refused.slice(0, 200));
    assert.match(refused, /retry-after: 1/i);
    for (const socket of started) socket.destroy();
    await waitFor(() => proxy.proxy.snapshot().bodies.diskBytes === 0 && proxy.proxy.snapshot().bodies.memoryBytes === 0, 'the budget came back');
    const ok = await request(`${proxy.url}/echo`, { method: 'POST', body: Buffer.alloc(2 * MB, 3) });
    assert.equal(ok.status, 200);
  });
});

describe('upgrades are requests of their lane', () => {
  let app: AppProcess;

  before(async () => {
    app = await startApp('upgrade');
  });
  after(async () => {
    await app.stop();
  });

  test('fake WebSocket upgrades wait for a slot, time out in the queue, and are relayed with backpressure', async () => {
    const proxy = await startProxyProcess(
      {
        proxy: { host: '127.0.0.1', port: 0, streaming: { responseWindowBytes: 64 * 1024 } },
        pools: { web: { targets: [app.address], queue: { timeoutMs: 1000, max: 100 } } },
        // no spool: the worker's 200 streams at the pace of a client that never reads (the case that pinned memory)
        lanes: { clone: { pool: 'web' }, bot: { pool: 'web' }, page: { spoolBytes: 0 } },
      },
      { NODE_OPTIONS: '--max-semi-space-size=1' },
    );
    const sockets: net.Socket[] = [];
    try {
      const baseline = proxy.rssBytes();
      const statuses: string[] = [];
      for (let i = 0; i < 40; i++) {
        const socket = net.connect(proxy.port, '127.0.0.1');
        socket.on('error', () => {});
        socket.on('data', (chunk) => statuses.push(chunk.toString('latin1', 0, 12)));
        socket.write('GET /big?bytes=20000000 HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
        socket.once('data', () => socket.pause()); // reads the status line, then never again
        sockets.push(socket);
      }
      await waitFor(() => statuses.filter((line) => line.includes('503')).length === 39, 'all but one timed out in the queue', 15_000);
      let peak = baseline;
      for (let i = 0; i < 10; i++) {
        peak = Math.max(peak, proxy.rssBytes());
        await sleep(100);
      }
      assert.equal(statuses.filter((line) => line.includes(' 200')).length, 1, 'one got the worker: its 200 is relayed as a response');
      const stats = await appStats(app);
      assert.equal(stats.maxInflight, 1, 'the worker never had more than its one slot in use');
      assert.ok(peak - baseline < 24 * MB, `proxy RSS grew by ${((peak - baseline) / MB).toFixed(1)} MB`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await proxy.stop();
    }
  });

  test("a worker's plain answer to an upgrade, larger than the response window, reaches a reading client whole", async () => {
    const proxy = await startProxy({ pools: { web: [app.address] }, config: { proxy: { streaming: { responseWindowBytes: 64 * 1024 } } } });
    try {
      const raw = await rawExchange(proxy.port, 'GET /big?bytes=1000000 HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', { timeoutMs: 10_000 });
      assert.equal(statusOf(raw), 200, raw.slice(0, 200));
      assert.equal(bodyOf(raw).length, 1_000_000, 'the whole body, then the connection closed');
      await waitFor(() => proxy.proxy.pools.get('web')!.upstreams[0].inflight === 0, 'the slot came back');
    } finally {
      await proxy.close();
    }
  });

  test('a client that stops reading is cut after the send timeout, and its worker freed', async () => {
    // no spool: the response streams at the client's pace, so only the send timeout frees the worker
    const proxy = await startProxy({
      pools: { web: [app.address] },
      config: { proxy: { streaming: { responseWindowBytes: 64 * 1024, sendTimeoutMs: 500 } }, lanes: { page: { spoolBytes: 0 } } },
    });
    try {
      for (const head of ['GET /big?bytes=50000000 HTTP/1.1\r\nHost: t\r\n\r\n', 'GET /big?bytes=50000000 HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n']) {
        const socket = net.connect(proxy.port, '127.0.0.1');
        socket.on('error', () => {});
        let received = 0;
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        socket.on('data', (chunk) => (received += chunk.length));
        socket.write(head);
        socket.once('data', () => socket.pause());
        await waitFor(() => proxy.proxy.pools.get('web')!.upstreams[0].inflight === 1, 'the worker streams to it');
        await waitFor(() => proxy.proxy.pools.get('web')!.upstreams[0].inflight === 0, 'the worker was freed');
        socket.resume(); // read what reached the socket buffers, then the close
        await closed;
        assert.ok(received < 50_000_000, `the response was cut (${received} bytes arrived)`);
      }
      assert.equal((await request(`${proxy.url}/`)).status, 200);
    } finally {
      await proxy.close();
    }
  });

  test('a pool takes at most maxUpgraded WebSockets at once: 503 past it, and places come back', async () => {
    const proxy = await startProxy({ pools: { web: [app.address] }, config: { pools: { web: { maxUpgraded: 2 } } } });
    const open = (): Promise<WebSocket | number> =>
      new Promise((resolve) => {
        const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws`);
        socket.on('open', () => resolve(socket));
        socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        socket.on('error', () => resolve(0));
      });
    try {
      const first = await open();
      const second = await open();
      assert.ok(first instanceof WebSocket && second instanceof WebSocket);
      assert.equal(await open(), 503);
      first.close();
      await waitFor(() => proxy.proxy.pools.get('web')!.upgraded === 1, 'a place came back');
      const third = await open();
      assert.ok(third instanceof WebSocket);
      third.close();
      second.close();
      assert.equal(proxy.proxy.pools.get('web')!.upstreams[0].inflight <= 1, true);
    } finally {
      await proxy.close();
    }
  });

  test('an upgrade to another protocol (h2c) is served as a plain request and the connection closes', async () => {
    const proxy = await startProxy({ pools: { web: [app.address] } });
    try {
      const raw = await rawExchange(proxy.port, 'GET /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n');
      assert.equal(statusOf(raw), 200, raw.slice(0, 200));
      const echoed = JSON.parse(bodyOf(raw));
      assert.equal(echoed.headers.upgrade, undefined, 'the worker is never asked to switch to h2c');
      assert.match(raw, /connection: close/i);
    } finally {
      await proxy.close();
    }
  });
});

describe('connections: every one bounded, none closed under a request', () => {
  let app: AppProcess;
  const started: StartedProxy[] = [];
  const opened: net.Socket[] = [];

  before(async () => {
    app = await startApp('connections');
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

  test('pipelined requests are served one at a time, in order; past maxPipelined waiting they get 503', async () => {
    const proxy = await proxyWith({ proxy: { clients: { maxPipelined: 3 } }, pools: { web: { concurrency: 4 } } });
    const maxBefore = (await appStats(app)).maxInflight;
    const pipeline = (count: number) =>
      rawExchange(
        proxy.port,
        Array.from({ length: count }, (_, i) => `GET /slow?ms=150&n=${i} HTTP/1.1\r\nHost: t\r\n${i === count - 1 ? 'Connection: close\r\n' : ''}\r\n`).join(''),
        { timeoutMs: 8000 },
      );
    const four = await pipeline(4);
    assert.equal(four.match(/HTTP\/1\.1 200/g)?.length, 4, four.slice(0, 300));
    assert.ok((await appStats(app)).maxInflight <= Math.max(1, maxBefore), 'never two of its requests on the workers at once');
    const eight = await pipeline(8);
    const statuses = [...eight.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) => Number(match[1]));
    assert.deepEqual(statuses.slice(0, 4), [200, 200, 200, 200], 'the one in flight and the three waiting behind it');
    assert.ok(statuses.slice(4).every((status) => status === 503), `the rest: ${statuses.join(',')}`);
  });

  test('at maxConnections the oldest idle connection gives way; with none idle a new one gets 503', async () => {
    const proxy = await proxyWith({ proxy: { clients: { maxConnections: 4, page: { idleTimeoutMs: 60_000 } } }, pools: { web: { concurrency: 8 } } });
    const idle: net.Socket[] = [];
    for (let i = 0; i < 4; i++) idle.push(await openKeepAlive(proxy.port, '/'));
    opened.push(...idle);
    const closedFirst = new Promise<void>((resolve) => idle[0].once('close', () => resolve()));
    assert.equal((await request(`${proxy.url}/`)).status, 200, 'a new client is served');
    await closedFirst;
    for (const socket of idle) socket.destroy();
    await waitFor(() => proxy.proxy.connections.size === 0, 'all closed');
    const busy = Array.from({ length: 4 }, () => request(`${proxy.url}/slow?ms=1500`));
    await waitFor(() => proxy.proxy.connections.counts().byClass.page.active === 4, 'four requests in flight');
    const refused = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal(statusOf(refused), 503, refused.slice(0, 200));
    assert.deepEqual((await Promise.all(busy)).map((response) => response.status), [200, 200, 200, 200]);
  });

  test("an idle connection whose next request has arrived is not closed by a late idle sweep", async () => {
    const proxy = await proxyWith({ proxy: { clients: { page: { idleTimeoutMs: 300 } } } });
    const socket = await openKeepAlive(proxy.port, '/');
    opened.push(socket);
    await sleep(200);
    const answer = new Promise<string>((resolve) => {
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('close', () => resolve(received));
      setTimeout(() => resolve(received), 3000);
    });
    // The request is in the proxy's kernel buffer before its event loop (this process's) stalls
    // past the idle deadline; the loop then runs its timers (the sweep) before it reads sockets.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        socket.write('GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
        const until = Date.now() + 400;
        while (Date.now() < until);
        resolve();
      }),
    );
    const raw = await answer;
    assert.equal(statusOf(raw), 200, `the request on the expiring connection was answered: ${JSON.stringify(raw.slice(0, 80))}`);
  });
});

describe('what a hostile review found', () => {
  let app: AppProcess;
  const started: StartedProxy[] = [];

  before(async () => {
    app = await startApp('review');
  });
  after(async () => {
    await Promise.all(started.map((proxy) => proxy.close()));
    await app.stop();
  });

  async function proxyWith(config: Record<string, unknown>) {
    const proxy = await startProxy({ pools: { web: [app.address] }, config });
    started.push(proxy);
    return proxy;
  }
  const worker = (proxy: StartedProxy) => proxy.proxy.snapshot().pools[0].workers[0];

  test('connections whose answer ends after they closed leave nothing on the idle list (a leak the fuzzer found)', async () => {
    const proxy = await proxyWith({});
    // an upgrade's answer object closes after its socket: its end once put the closed connection back on the idle list
    for (let i = 0; i < 20; i++) {
      const head = `GET /?ms=${i % 2 ? 50 : 0} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
      if (i % 4 === 0) await rawExchange(proxy.port, head, { timeoutMs: 2000 });
      else await rawConversation(proxy.port, (socket) => socket.end(head), { timeoutMs: 300 });
    }
    await waitFor(() => proxy.proxy.snapshot().connections.total === 0, 'every connection closed');
    await sleep(200);
    assert.equal(proxy.proxy.snapshot().connections.idleListed, 0, 'closed connections still held on the idle list');
  });

  test('a worker that answers before reading a trickling upload is not held by its connection', async () => {
    const proxy = await proxyWith({ proxy: { clients: { page: { bodyBufferBytes: 64 * 1024 } } } });
    const drip: NodeJS.Timeout[] = [];
    const answer = rawConversation(
      proxy.port,
      (socket) => {
        // the upstream app's default route answers without reading the body
        socket.write(`POST / HTTP/1.1\r\nHost: t\r\nContent-Length: ${10 * MB}\r\n\r\n`);
        socket.write(Buffer.alloc(80 * 1024, 1));
        drip.push(setInterval(() => socket.writable && socket.write('x'), 500));
      },
      { timeoutMs: 8000 },
    );
    await waitFor(async () => (await appStats(app)).served > 0 && worker(proxy).inflight === 0, 'the worker answered');
    const next = await request(`${proxy.url}/echo`, { timeoutMs: 3000 });
    assert.equal(next.status, 200, 'the next request is not stuck behind the upload');
    const raw = await answer;
    drip.forEach(clearInterval);
    assert.equal(statusOf(raw), 200);
    assert.match(raw, /connection: close/i, 'the uploader is told the connection ends');
    await waitFor(() => worker(proxy).connectionsInUse === 0 && worker(proxy).waitingForConnection === 0, 'no worker connection left busy');
  });

  test("one client's bodies take at most its share of the buffer; another client's still buffer", async () => {
    const proxy = await proxyWith({ proxy: { bodies: { memoryBytes: 4096, perClientBytes: 2 * MB, minBytesPerSec: 1 }, clients: { page: { bodyBufferBytes: 4 * MB } } } });
    const holder = net.connect({ port: proxy.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    holder.on('error', () => {});
    holder.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${4 * MB}\r\n\r\n`);
    holder.write(Buffer.alloc(MB + MB / 2, 1));
    await waitFor(() => proxy.proxy.snapshot().bodies.diskBytes > MB, 'the first body is buffered');
    const sameClient = await rawConversation(proxy.port, (socket) => {
      socket.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${MB}\r\n\r\n`);
      socket.write(Buffer.alloc(MB, 2));
    }, { localAddress: '127.0.0.2' });
    assert.equal(statusOf(sameClient), 503, sameClient.slice(0, 200));
    const other = await rawConversation(proxy.port, (socket) => {
      socket.write(`POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: ${MB}\r\n\r\n`);
      socket.write(Buffer.alloc(MB, 3));
    }, { localAddress: '127.0.0.3' });
    assert.equal(statusOf(other), 200, other.slice(0, 200));
    holder.destroy();
    await waitFor(() => proxy.proxy.snapshot().bodies.clients === 0, 'the share came back');
  });

  test('bare CRLFs after a response do not keep an idle connection open', async () => {
    const proxy = await proxyWith({ proxy: { limits: { headersTimeoutMs: 1000 }, clients: { page: { idleTimeoutMs: 500 } } } });
    const socket = await openKeepAlive(proxy.port, '/');
    const keeper = setInterval(() => socket.writable && socket.write('\r\n'), 50);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.resume();
    await Promise.race([closed, sleep(6000)]);
    clearInterval(keeper);
    assert.ok(socket.destroyed || socket.readableEnded, 'closed once the CRLFs made no request for a headers timeout');
    socket.destroy();
  });

  test('a streamed upload longer than the request timeout succeeds while it keeps its rate', async () => {
    const proxy = await proxyWith({ proxy: { clients: { page: { requestTimeoutMs: 1500, bodyBufferBytes: 64 * 1024 } }, bodies: { minBytesPerSec: 1024, rateWindowMs: 500 } } });
    const total = 3 * MB;
    const raw = await rawConversation(proxy.port, (socket) => {
      socket.write(`POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: ${total}\r\n\r\n`);
      let sent = 0;
      const pump = setInterval(() => {
        const piece = Math.min(64 * 1024, total - sent);
        if (piece <= 0 || !socket.writable) return clearInterval(pump);
        socket.write(Buffer.alloc(piece, 5));
        sent += piece;
      }, 50); // about 1.3 MB/s: 2.4 s in all, past the 1.5 s request timeout
    }, { timeoutMs: 15_000 });
    assert.equal(statusOf(raw), 200, raw.slice(0, 200));
    assert.equal(JSON.parse(bodyOf(raw)).bodyBytes, total);
  });

  test('a malformed request pipelined behind one in flight does not overwrite its answer', async () => {
    const proxy = await proxyWith({});
    const raw = await rawExchange(proxy.port, 'GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n');
    assert.equal(statusOf(raw), 200, raw.slice(0, 200));
    assert.match(raw, /slow review/);
    assert.doesNotMatch(raw, /400 Bad Request/);
  });

  test('an upgrade pipelined past maxPipelined leaves the answers owed before it', async () => {
    const proxy = await proxyWith({ proxy: { clients: { maxPipelined: 1 } } });
    const raw = await rawExchange(
      proxy.port,
      'GET /slow?ms=200 HTTP/1.1\r\nHost: t\r\n\r\nGET /slow?ms=200 HTTP/1.1\r\nHost: t\r\n\r\nGET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.equal(raw.match(/HTTP\/1\.1 200/g)?.length, 2, raw.slice(0, 300));
  });

  test('HTTP/1.0 gets no 100 Continue; refused pipelined requests are counted', async () => {
    const proxy = await proxyWith({ proxy: { clients: { maxPipelined: 1 } } });
    const raw = await rawExchange(proxy.port, 'POST /echo HTTP/1.0\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello');
    assert.doesNotMatch(raw, /100 Continue/);
    assert.equal(statusOf(raw), 200);
    await rawExchange(proxy.port, 'GET /slow?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n'.repeat(3) + 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    const metrics = await proxy.proxy.stats.registry.metrics();
    assert.match(metrics, /switchyard_requests_total\{lane="page",code="503"\} [1-9]/);
  });
});
