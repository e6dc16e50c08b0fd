import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { CidrSet } from '../../lib/cidr.ts';
import { ThrottledLog } from '../../lib/throttled-log.ts';
import { validateConfig, type Lane } from '../../lib/config.ts';
import { clientFraming, createExchange, type Exchange } from '../../proxy/exchange.ts';
import { Forwarder } from '../../proxy/forwarder.ts';
import type { Pool } from '../../proxy/pool.ts';
import type { BodyStore } from '../../proxy/request-body.ts';
import { buildPools } from '../../proxy/server.ts';
import { SpoolStore } from '../../proxy/spool-store.ts';
import { BodyStage } from '../../proxy/stages/body.ts';
import { identifyClient } from '../../proxy/stages/client.ts';
import { buildRoutes } from '../../proxy/stages/route.ts';
import { deepMerge } from '../../proxy/testing.ts';
import { upstreamHeaders } from '../../proxy/upstream-headers.ts';
import type { Upstream } from '../../proxy/upstream.ts';

// The Forwarder (proxy/forwarder.ts) driven directly: a small front server builds each exchange
// as the request path does (createExchange, the body stage for a body, the worker's headers,
// clientClosed on the response's close) and hands it to forward(). The pool, its upstreams, the
// routes and the spools are the real classes, built from a config as server.ts builds them.
// Workers are in-process http servers on 127.0.0.1:0. Deadlines are expired by calling
// expireDeadlines with a synthetic time.

const log = pino({ level: 'silent' });
/** a broken forwarder tends to hang a request: each test fails instead (they take well under a second) */
const PER_TEST = { timeout: 8000 };
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Worker {
  port: number;
  target: string;
  /** requests it received, as "METHOD path" */
  seen: string[];
  /** the proxy-side port of the connection each came on */
  ports: number[];
  /** resolves with the next request it receives */
  next(): Promise<{ req: http.IncomingMessage; res: http.ServerResponse }>;
}

async function worker(handler: Handler): Promise<Worker> {
  let waiters: Array<(value: { req: http.IncomingMessage; res: http.ServerResponse }) => void> = [];
  const seen: string[] = [];
  const ports: number[] = [];
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    ports.push(req.socket.remotePort!);
    const current = waiters;
    waiters = [];
    for (const resolve of current) resolve({ req, res });
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return { port, target: `127.0.0.1:${port}`, seen, ports, next: () => new Promise((resolve) => waiters.push(resolve)) };
}

/** A loopback port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Front {
  url: string;
  pool: Pool;
  upstreams: Upstream[];
  forwarder: Forwarder;
  responseSpool: SpoolStore;
  /** every exchange made, in order */
  exchanges: Exchange[];
}

/**
 * One pool "web" (every lane goes to it) in front of `targets`, concurrency 1 per worker. The
 * request's lane is its x-test-lane header (default page), its fair-share client x-test-client.
 */
async function front(targets: string[], overrides: Record<string, unknown> = {}): Promise<Front> {
  const data = mkdtempSync(path.join(tmpdir(), 'switchyard-forwarder-test-'));
  const raw = deepMerge(
    {
      data,
      pools: { web: { targets, concurrency: 1 } },
      lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } },
    },
    overrides,
  );
  const config = validateConfig(raw, '(forwarder test)');
  const pools = buildPools(config);
  const routes = buildRoutes(config, pools);
  const pool = pools.get('web')!;
  const proxyConfig = config.proxy;
  const responseSpool = new SpoolStore({
    spoolDir: proxyConfig.streaming.spoolDir,
    perClientBytes: proxyConfig.streaming.spoolPerClientBytes,
    spoolTotalBytes: proxyConfig.streaming.spoolTotalBytes,
    memoryTotalBytes: 0,
  });
  responseSpool.prepare();
  const bodies: BodyStore = new SpoolStore(proxyConfig.bodies);
  bodies.prepare();
  const forwarder = new Forwarder(proxyConfig, config.lanes, responseSpool, log, { tunnelOpened: () => assert.fail('no tunnels here') });
  const bodyStage = new BodyStage(bodies, config, new ThrottledLog(log), (exchange, run) => forwarder.contain(exchange, run));
  const exchanges: Exchange[] = [];
  const trusted = new CidrSet(proxyConfig.trustedProxies);

  const server = http.createServer((req, res) => {
    const lane = (req.headers['x-test-lane'] as Lane | undefined) ?? 'page';
    const framing = clientFraming(req.headers);
    const exchange = createExchange({
      req,
      res,
      route: routes[lane],
      clientIp: '127.0.0.1',
      client: String(req.headers['x-test-client'] ?? 'client-a'),
      closeConnection: false,
      framing,
      startedAt: performance.now(),
      upgrade: undefined,
    });
    exchanges.push(exchange);
    res.on('close', () => {
      forwarder.clientClosed(exchange);
      exchange.body?.release();
    });
    // as the request path does: the worker gets the client's headers less hop-by-hop ones (a
    // client's Connection: close must not close the worker connection), plus X-Forwarded-*
    const clientHeaders = req.headers;
    const client = identifyClient(req, trusted, undefined);
    if (!framing.hasBody) {
      req.headers = upstreamHeaders(clientHeaders, client);
      return forwarder.forward(exchange);
    }
    bodyStage.read(exchange, lane, false, (bufferedBodyBytes) => {
      req.headers = upstreamHeaders(clientHeaders, client, { bufferedBodyBytes });
      forwarder.forward(exchange);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    pool.close();
    forwarder.close();
    return new Promise<void>((resolve) =>
      server.close(() => {
        rmSync(data, { recursive: true, force: true });
        resolve();
      }),
    );
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, pool, upstreams: pool.upstreams, forwarder, responseSpool, exchanges };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request on a connection of its own; rejects when the response is cut. */
function request(url: string, options: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${options.path ?? '/'}`, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Polls (on the loop, not a clock) until `condition` holds; fails after `ms`. */
async function until(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const totalInflight = (f: Front) => f.upstreams.reduce((sum, upstream) => sum + upstream.inflight, 0);

// --- relay ----------------------------------------------------------------------------------------

test("relay: the worker's response reaches the client with its status, headers, body and x-switchyard-lane", PER_TEST, async () => {
  const w = await worker((req, res) => {
    res.writeHead(201, { 'x-from': 'worker', 'content-type': 'text/plain' });
    res.end(`hello ${req.url}`);
  });
  const f = await front([w.target], { proxy: { debugHeaders: true } });
  const answer = await request(f.url, { path: '/r/x?y=1', headers: { 'x-test-lane': 'browser' } });
  assert.equal(answer.status, 201);
  assert.equal(answer.body, 'hello /r/x?y=1');
  assert.equal(answer.headers['x-from'], 'worker');
  assert.equal(answer.headers['x-switchyard-lane'], 'browser');
  assert.equal(answer.headers['x-switchyard-worker'], 'web-0');
  const [exchange] = f.exchanges;
  assert.deepEqual({ worker: exchange.worker, sends: exchange.sends, retried: exchange.retried, error: exchange.error }, { worker: 'web-0', sends: 1, retried: false, error: undefined });
  await until(() => totalInflight(f) === 0, 'the slot is freed');
  assert.equal(f.upstreams[0].served, 1);
});

// --- the slot and a slow client ----------------------------------------------------------------------

const BIG = 16 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

/** Writes BIG bytes with backpressure; `finished` resolves when the worker has written them all. */
function bigResponder(): { handler: Handler; finished: Promise<void> } {
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const handler: Handler = (req, res) => {
    if (req.url !== '/big') return void res.end('small');
    res.writeHead(200, { 'content-length': String(BIG) });
    let sent = 0;
    const pump = () => {
      while (sent < BIG) {
        sent += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      res.end(done);
    };
    pump();
  };
  return { handler, finished };
}

/** A GET of /big whose reader takes nothing until `read()` is called; read() resolves with the bytes. */
function stalledReader(url: string): { response: Promise<http.IncomingMessage>; read(): Promise<number> } {
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get(`${url}/big`, { agent: false, headers: { 'x-test-client': 'slow-reader' } }, (res) => {
      res.pause();
      resolve(res);
    });
    req.on('error', reject);
  });
  return {
    response,
    async read() {
      const res = await response;
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.resume();
      await once(res, 'end');
      return bytes;
    },
  };
}

test("slot: freed once the worker has produced the whole response, while the client has not read it (spool past a small window)", PER_TEST, async () => {
  const big = bigResponder();
  const w = await worker(big.handler);
  const f = await front([w.target], { proxy: { streaming: { responseWindowBytes: 16 * 1024 } } });
  const slow = stalledReader(f.url);
  const res = await slow.response;
  assert.equal(res.headers['x-switchyard-lane'], 'page');
  await big.finished;
  await until(() => totalInflight(f) === 0, 'the slot is freed while the client reads nothing');
  assert.ok(f.responseSpool.usage.diskBytes > 0, 'nothing was spooled: the client took the whole response after all');
  assert.equal(f.pool.queueDepth, 0);

  // the one worker (concurrency 1) serves another client meanwhile
  const other = await request(f.url, { path: '/small', headers: { 'x-test-client': 'other' } });
  assert.equal(other.body, 'small');

  assert.equal(await slow.read(), BIG, 'the slow client did not get the whole response');
  await until(() => f.responseSpool.usage.diskBytes === 0, 'the spool is released');
});

test('slot: with no spool share the worker streams at the client\'s pace, holding its slot; a request behind it queues', PER_TEST, async () => {
  const big = bigResponder();
  const w = await worker(big.handler);
  const f = await front([w.target], { proxy: { streaming: { responseWindowBytes: 16 * 1024 } }, lanes: { page: { spoolBytes: 0 } } });
  const slow = stalledReader(f.url);
  await slow.response;
  let workerDone = false;
  void big.finished.then(() => (workerDone = true));
  const queued = request(f.url, { path: '/small', headers: { 'x-test-client': 'other' } });
  await until(() => f.pool.queueDepth === 1, 'the second request queues');
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(workerDone, false, 'the worker finished with nowhere to put the response');
  assert.equal(totalInflight(f), 1, 'the slot was freed before the worker produced the whole response');
  assert.equal(f.pool.queueDepth, 1);

  assert.equal(await slow.read(), BIG);
  assert.equal((await queued).body, 'small');
  assert.equal(f.pool.queueDepth, 0);
  await until(() => totalInflight(f) === 0, 'the slot is freed');
});

test('slot: a worker that answers before taking the whole body frees its slot when its response ends; the rest is not sent', PER_TEST, async () => {
  // A raw worker that answers at once and goes on reading its connection (a Node worker would
  // close it, which would hide what the forwarder does itself).
  let bodyBytesSeen = 0;
  let workerConnection: net.Socket | undefined;
  const raw = net.createServer((socket) => {
    workerConnection = socket;
    socket.on('error', () => {});
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nrefused early'));
    socket.on('data', (chunk: Buffer) => (bodyBytesSeen += chunk.length));
  });
  raw.listen(0, '127.0.0.1');
  await once(raw, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => {
    workerConnection?.destroy();
    raw.close(() => resolve());
  }));
  // a body that streams from the client to the worker (none of it buffered first)
  const f = await front([`127.0.0.1:${(raw.address() as AddressInfo).port}`], { proxy: { clients: { page: { bodyBufferBytes: 0 } } } });
  // a keep-alive client: a Connection: close in the answer is the proxy's, not an echo of the client's
  const agent = new http.Agent({ keepAlive: true });
  const client = http.request(`${f.url}/push`, { method: 'POST', agent, headers: { 'transfer-encoding': 'chunked' } });
  client.on('error', () => {});
  client.write('the first part of a body that never ends');
  const [res] = (await once(client, 'response')) as [http.IncomingMessage];
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (body += chunk));
  await once(res, 'end');
  assert.equal(body, 'refused early');
  assert.equal(res.headers.connection, 'close', 'the rest of the body could be read as a next request');
  await until(() => totalInflight(f) === 0, 'the slot is freed while the client is still sending its body');
  assert.equal(client.writableEnded, false);
  await until(() => workerConnection?.destroyed === true, 'the worker connection is closed, not left carrying the rest of the body');
  const seen = bodyBytesSeen;
  client.write('more');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(bodyBytesSeen, seen, 'the body went on to the worker after its answer');
  client.destroy();
  agent.destroy();
});

// --- deadlines ------------------------------------------------------------------------------------

test('timeout: 504 when the worker sends no headers within upstream.responseTimeoutMs, and its slot comes back', PER_TEST, async () => {
  const w = await worker(() => {}); // takes the request, never answers
  const f = await front([w.target], { proxy: { upstream: { responseTimeoutMs: 1000 } }, lanes: { page: { responseTimeoutMs: 0 } } });
  const received = w.next();
  const answer = request(f.url, { path: '/slow' });
  const { req: workerReq } = await received;
  const workerGone = once(workerReq.socket, 'close');

  f.forwarder.expireDeadlines(Date.now() + 500);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(totalInflight(f), 1, 'expired before the response timeout');
  f.forwarder.expireDeadlines(Date.now() + 1000);
  const { status, headers } = await answer;
  assert.equal(status, 504);
  assert.equal(headers['x-switchyard-lane'], 'page');
  assert.equal(f.exchanges[0].error, 'worker did not answer in time');
  assert.equal(totalInflight(f), 0, 'the slot of a timed-out request was kept');
  await workerGone; // the request to the worker is abandoned, not left running on its connection
  assert.equal(f.upstreams[0].state, 'ready', 'a slow worker was ejected');
});

test("timeout: the lane's response timeout gives 504 before headers too", PER_TEST, async () => {
  const w = await worker(() => {});
  const f = await front([w.target], { lanes: { clone: { responseTimeoutMs: 2000 } } });
  const received = w.next();
  const answer = request(f.url, { headers: { 'x-test-lane': 'clone' } });
  await received;
  f.forwarder.expireDeadlines(Date.now() + 1500);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(totalInflight(f), 1);
  f.forwarder.expireDeadlines(Date.now() + 2000);
  assert.equal((await answer).status, 504);
  assert.equal((await answer).headers['x-switchyard-lane'], 'clone');
  assert.equal(totalInflight(f), 0);
});

test("timeout: the lane's response timeout cuts a response in progress and frees the slot", PER_TEST, async () => {
  const w = await worker((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('the first part'); // ...and never the rest
  });
  const f = await front([w.target], { lanes: { page: { responseTimeoutMs: 5000 } } });
  const received = w.next();
  const cut = new Promise<{ status: number; body: string; ended: boolean }>((resolve, reject) => {
    http
      .get(`${f.url}/stuck`, { agent: false }, (res) => {
        let body = '';
        let ended = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => (ended = true));
        res.on('close', () => resolve({ status: res.statusCode!, body, ended }));
        res.on('error', () => {});
      })
      .on('error', reject);
  });
  const { res: workerRes } = await received;
  await until(() => f.exchanges[0]?.res.headersSent === true, 'the response has begun');
  f.forwarder.expireDeadlines(Date.now() + 4000);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(totalInflight(f), 1, 'cut before the lane timeout');

  const workerGone = once(workerRes, 'close');
  f.forwarder.expireDeadlines(Date.now() + 5000);
  const result = await cut;
  assert.equal(result.status, 200);
  assert.equal(result.body, 'the first part');
  assert.equal(result.ended, false, 'a cut response looked complete to the client');
  assert.equal(f.exchanges[0].error, 'lane response timeout');
  assert.equal(totalInflight(f), 0);
  await workerGone;
});

// --- failures and retries --------------------------------------------------------------------------

test('retry: a refused connect goes to the other worker, and the refusing one is ejected', PER_TEST, async () => {
  const w = await worker((_req, res) => res.end('from the live one'));
  const dead = await deadPort();
  const f = await front([`127.0.0.1:${dead}`, w.target]);
  const answer = await request(f.url, { path: '/x' });
  assert.equal(answer.status, 200);
  assert.equal(answer.body, 'from the live one');
  const [exchange] = f.exchanges;
  assert.deepEqual({ sends: exchange.sends, retried: exchange.retried, worker: exchange.worker }, { sends: 2, retried: true, worker: 'web-1' });
  assert.equal(f.upstreams[0].state, 'down', 'the refusing worker stayed in rotation');
  assert.equal(f.upstreams[0].lastError, 'ECONNREFUSED');
  assert.equal(f.upstreams[1].state, 'ready');
  assert.deepEqual(w.seen, ['GET /x']);
  await until(() => totalInflight(f) === 0, 'both slots are freed');
});

test('retry: a POST whose worker dies mid-request is not replayed: 502, the other worker never sees it', PER_TEST, async () => {
  let bodySeen = '';
  const dying = await worker((req) => {
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (bodySeen += chunk));
    req.on('end', () => req.socket.destroy()); // the worker process dies while working on it
  });
  const other = await worker((_req, res) => res.end('replayed'));
  const f = await front([dying.target, other.target]);
  const answer = await request(f.url, { method: 'POST', path: '/push', headers: { 'content-type': 'text/plain' }, body: 'the payload' });
  assert.equal(answer.status, 502);
  assert.equal(answer.headers['x-switchyard-lane'], 'page');
  assert.equal(bodySeen, 'the payload');
  assert.deepEqual(other.seen, [], 'the POST was sent again');
  const [exchange] = f.exchanges;
  assert.equal(exchange.body?.complete, true, 'the body was not held whole (then it could not be replayed anyway)');
  assert.equal(exchange.sends, 1);
  assert.equal(f.upstreams[0].state, 'down', 'a worker that died on a request stayed in rotation');
  await until(() => totalInflight(f) === 0, 'the slot is freed');
});

/** Two workers; web-0 has a keep-alive connection from the proxy when the test request goes to it. */
async function reusedConnectionDeath(method: string): Promise<{ answer: Answer; f: Front; dying: Worker; other: Worker }> {
  const dying = await worker((req, res) => {
    if (req.url === '/warm') return void res.end('warm');
    req.resume();
    req.on('end', () => req.socket.destroy());
  });
  const other = await worker((_req, res) => res.end('from the other worker'));
  const f = await front([dying.target, other.target]);
  // round robin: web-0, web-1, then web-0 again over its pooled connection
  assert.equal((await request(f.url, { path: '/warm' })).body, 'warm');
  assert.equal((await request(f.url, { path: '/warm' })).body, 'from the other worker');
  await until(() => totalInflight(f) === 0, 'the warm-up slots are freed');
  const answer = await request(f.url, { method, path: '/act', body: method === 'POST' ? 'x' : undefined });
  assert.deepEqual(dying.seen, ['GET /warm', `${method} /act`]);
  assert.equal(dying.ports[1], dying.ports[0], 'the request did not go over the pooled connection');
  return { answer, f, dying, other };
}

test('retry: a POST reset on a reused worker connection is not replayed either', PER_TEST, async () => {
  const { answer, f, other } = await reusedConnectionDeath('POST');
  assert.equal(answer.status, 502);
  assert.deepEqual(other.seen, ['GET /warm'], 'the POST was sent again');
  assert.equal(f.exchanges[2].sends, 1);
  assert.equal(f.upstreams[0].state, 'ready', 'a reset of a reused connection (the keep-alive race) ejected the worker');
  await until(() => totalInflight(f) === 0, 'the slot is freed');
});

test('retry: a GET reset on a reused worker connection is retried once (the keep-alive race), without ejecting the worker', PER_TEST, async () => {
  const { answer, f, dying, other } = await reusedConnectionDeath('GET');
  assert.equal(answer.status, 200);
  assert.equal(answer.body, 'from the other worker');
  assert.deepEqual(other.seen, ['GET /warm', 'GET /act']);
  assert.deepEqual({ sends: f.exchanges[2].sends, retried: f.exchanges[2].retried }, { sends: 2, retried: true });
  assert.equal(f.upstreams[0].state, 'ready');
  await until(() => totalInflight(f) === 0, 'the slots are freed');
});

// --- the client leaving ------------------------------------------------------------------------------

test('client gone: a client that leaves while its worker works frees the slot, and the worker request is abandoned', PER_TEST, async () => {
  const w = await worker(() => {});
  const f = await front([w.target]);
  const received = w.next();
  const req = http.get(`${f.url}/long`, { agent: false });
  req.on('error', () => {});
  const { req: workerReq } = await received;
  assert.equal(totalInflight(f), 1);
  const workerGone = once(workerReq.socket, 'close');
  req.destroy();
  await until(() => totalInflight(f) === 0, "the slot is freed after the client left");
  await workerGone;
});

test('client gone: a client that leaves mid-response frees the slot', PER_TEST, async () => {
  const w = await worker((_req, res) => {
    res.writeHead(200);
    res.write('part');
  });
  const f = await front([w.target]);
  const received = w.next();
  const response = new Promise<http.IncomingMessage>((resolve) => http.get(`${f.url}/part`, { agent: false }, resolve).on('error', () => {}));
  const { res: workerRes } = await received;
  const res = await response;
  res.on('error', () => {});
  await once(res, 'data');
  const workerGone = once(workerRes, 'close');
  res.destroy();
  await until(() => totalInflight(f) === 0, 'the slot is freed after the client left');
  await workerGone;
});

test('client gone: one that leaves while queued leaves the queue, and its request never reaches a worker', PER_TEST, async () => {
  const w = await worker((req, res) => {
    if (req.url === '/hold') return; // answered below
    res.end('served');
  });
  const f = await front([w.target]);
  const holding = w.next();
  const first = request(f.url, { path: '/hold', headers: { 'x-test-client': 'first' } });
  const { res: heldRes } = await holding;
  const queued = http.get(`${f.url}/queued`, { agent: false, headers: { 'x-test-client': 'second' } });
  queued.on('error', () => {});
  await until(() => f.pool.queueDepth === 1, 'the second request queues');
  queued.destroy();
  await until(() => f.pool.queueDepth === 0, 'the queue is empty after its client left');

  heldRes.end('held');
  assert.equal((await first).body, 'held');
  assert.equal((await request(f.url, { path: '/after', headers: { 'x-test-client': 'third' } })).body, 'served');
  assert.deepEqual(w.seen, ['GET /hold', 'GET /after'], 'the request of a client that left was sent');
  await until(() => totalInflight(f) === 0, 'the slot is freed');
});

test("client gone: one that leaves while its request waits for a connection to the worker frees the slot, and the request is never sent", PER_TEST, async () => {
  const w = await worker((req, res) => {
    if (req.url === '/occupy') return; // answered below
    res.end(`served ${req.url}`);
  });
  const f = await front([w.target]);
  const upstream = f.upstreams[0];
  // the worker's one connection (agent maxSockets = concurrency) is taken outside the pool
  const occupied = w.next();
  const occupier = http.get({ host: upstream.host, port: upstream.port, path: '/occupy', agent: upstream.agent });
  occupier.on('error', () => {});
  const { res: occupyRes } = await occupied;

  const waiting = http.get(`${f.url}/waiting`, { agent: false });
  waiting.on('error', () => {});
  await until(() => upstream.snapshot().waitingForConnection === 1, "the request waits in the worker's agent");
  assert.equal(upstream.inflight, 1);
  waiting.destroy();
  await until(() => upstream.inflight === 0, 'the slot is freed after its client left');

  occupyRes.end('done');
  assert.equal((await request(f.url, { path: '/after' })).body, 'served /after');
  assert.deepEqual(w.seen, ['GET /occupy', 'GET /after'], 'the request of a client that left was sent');
});
