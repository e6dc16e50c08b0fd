import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { CidrSet } from '../../lib/cidr.ts';
import { validateConfig } from '../../lib/config.ts';
import { Classifier } from '../../proxy/classify.ts';
import { clientFraming } from '../../proxy/exchange.ts';
import { Scheduler } from '../../proxy/scheduler.ts';
import { buildPools } from '../../proxy/server.ts';
import { fairShareOf, identifyClient } from '../../proxy/stages/client.ts';
import { serveEndpoint } from '../../proxy/stages/endpoints.ts';
import { buildRoutes, reserveUpgradePlace } from '../../proxy/stages/route.ts';
import { acceptedUpgrade, isRefusal, validateRequest } from '../../proxy/stages/validate.ts';

const config = validateConfig(
  { data: '/tmp/unused', pools: { web: { targets: ['127.0.0.1:1'], perClient: { maxUpgraded: 1 }, maxUpgraded: 2 } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } },
  '(stages test)',
);
const limits = config.proxy.limits;

/** The parts of an IncomingMessage the early stages read. */
function request(url: string, headers: Record<string, string> = {}, options: { httpVersion?: string; method?: string; remoteAddress?: string } = {}): http.IncomingMessage {
  const rawHeaders = Object.entries(headers).flat();
  const lowered = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  return {
    url,
    method: options.method ?? 'GET',
    httpVersion: options.httpVersion ?? '1.1',
    headers: lowered,
    rawHeaders,
    socket: { remoteAddress: options.remoteAddress ?? '198.51.100.7', remotePort: 40000 },
  } as unknown as http.IncomingMessage;
}

// --- validate --------------------------------------------------------------------------------

test('validate: a clean origin-form request passes with its canonical path', () => {
  const req = request('/a/./b/../c?x=1', { Host: 'example.org' });
  const result = validateRequest(req, limits);
  assert.ok(!isRefusal(result));
  assert.equal(result.path, '/a/c?x=1');
  assert.equal(req.url, '/a/c?x=1');
  assert.equal(result.expectsContinue, false);
});

test('validate: an absolute-form target gives the path, and its authority becomes the Host', () => {
  const req = request('http://repo.example:8080/r?cmd=x', { Host: 'other' });
  const result = validateRequest(req, limits);
  assert.ok(!isRefusal(result));
  assert.equal(req.url, '/r?cmd=x');
  assert.equal(req.headers.host, 'repo.example:8080');
});

test('validate: refusals, each with its status', () => {
  const longUrl = `/${'a'.repeat(limits.maxUrlBytes)}`;
  const bigHeader = { Host: 'h', 'X-Big': 'b'.repeat(limits.maxHeaderBytes) };
  const cases: Array<[http.IncomingMessage, number]> = [
    [request(longUrl, { Host: 'h' }), 414],
    [request('/', bigHeader), 431],
    [request('http://a:99999/', { Host: 'h' }), 400], // the crash of issue 17: an invalid authority
    [request('*', { Host: 'h' }), 400],
    [request('/', {}), 400], // HTTP/1.1 without Host
    [request('/', { Host: 'bad host' }), 400],
    [request('/', { Host: 'h', Expect: 'something-else' }), 417],
  ];
  for (const [req, status] of cases) {
    const result = validateRequest(req, limits);
    assert.ok(isRefusal(result), `${req.url} passed`);
    assert.equal(result.status, status, `${(req.url ?? '').slice(0, 40)}: ${result.reason}`);
  }
});

test('validate: HTTP/1.0 may omit Host; 100-continue is answered only for HTTP/1.1', () => {
  const old = validateRequest(request('/', { Expect: '100-continue' }, { httpVersion: '1.0' }), limits);
  assert.ok(!isRefusal(old));
  assert.equal(old.expectsContinue, false);
  const current = validateRequest(request('/', { Host: 'h', Expect: '100-Continue' }), limits);
  assert.ok(!isRefusal(current));
  assert.equal(current.expectsContinue, true);
});

test('validate: upgrade offers: only configured protocols on GET; never with a body', () => {
  const protocols = new Set(['websocket']);
  assert.equal(acceptedUpgrade(request('/', { Upgrade: 'WebSocket ' }), protocols, false), true);
  assert.equal(acceptedUpgrade(request('/', { Upgrade: 'h2c' }), protocols, false), false);
  assert.equal(acceptedUpgrade(request('/', { Upgrade: 'websocket' }, { method: 'POST' }), protocols, false), false);
  assert.deepEqual(acceptedUpgrade(request('/', { Upgrade: 'websocket' }), protocols, true), { status: 400, reason: 'an upgrade request cannot carry a body' });
});

test('framing: read once from the client headers', () => {
  assert.deepEqual(clientFraming({}), { hasBody: false, chunked: false, declaredLength: 0 });
  assert.deepEqual(clientFraming({ 'content-length': '0' }), { hasBody: false, chunked: false, declaredLength: 0 });
  assert.deepEqual(clientFraming({ 'content-length': '12' }), { hasBody: true, chunked: false, declaredLength: 12 });
  assert.deepEqual(clientFraming({ 'transfer-encoding': 'chunked' }), { hasBody: true, chunked: true, declaredLength: 0 });
});

// --- endpoints -------------------------------------------------------------------------------

async function answer(path: string, draining: boolean): Promise<{ status: number; body: string; connection: string | undefined; handled: boolean }> {
  let handled = false;
  const server = http.createServer((_req, res) => {
    handled = serveEndpoint(path, res, ['/_internal'], draining);
    if (!handled) res.end('app');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return { status: response.status, body: await response.text(), connection: response.headers.get('connection') ?? undefined, handled };
  } finally {
    server.close();
  }
}

test('endpoints: /healthz is ok, then 503 and closing while draining; internal paths are 404; others pass', async () => {
  assert.deepEqual(await answer('/healthz', false), { status: 200, body: '{"status":"ok"}', connection: 'keep-alive', handled: true });
  const draining = await answer('/healthz?probe=lb', true);
  assert.equal(draining.status, 503);
  assert.equal(draining.body, '{"status":"draining"}');
  assert.equal(draining.connection, 'close');
  assert.equal((await answer('/_internal/health', false)).status, 404);
  assert.deepEqual(await answer('/healthzz', false), { status: 200, body: 'app', connection: 'keep-alive', handled: false });
});

// --- client ----------------------------------------------------------------------------------

test('client: X-Forwarded-For is believed only from a trusted peer', () => {
  const trusted = new CidrSet(['10.0.0.0/8']);
  const forwarded = { Host: 'h', 'X-Forwarded-For': '203.0.113.9' };
  assert.equal(identifyClient(request('/', forwarded, { remoteAddress: '198.51.100.7' }), trusted, undefined).ip, '198.51.100.7');
  assert.equal(identifyClient(request('/', forwarded, { remoteAddress: '10.1.2.3' }), trusted, undefined).ip, '203.0.113.9');
});

test('client: fair-share keys: address, crawler network, bot token, and a trusted peer that names no client', () => {
  const classifier = new Classifier(config);
  const trusted = new CidrSet(['10.0.0.0/8']);
  const key = (headers: Record<string, string>, requestClass: 'page' | 'bot', remoteAddress = '198.51.100.7') => {
    const req = request('/', { Host: 'h', ...headers }, { remoteAddress });
    return fairShareOf(req, identifyClient(req, trusted, undefined), requestClass, classifier, trusted);
  };
  const browser = key({}, 'page');
  assert.equal(browser, key({}, 'page'), 'one client, one key');
  assert.notEqual(browser, key({}, 'page', '198.51.100.8'), 'two addresses, two keys');
  const crawler = { 'User-Agent': 'Mozilla/5.0 (compatible; Googlebot/2.1)' };
  assert.equal(key(crawler, 'bot', '198.51.100.7'), key(crawler, 'bot', '198.51.100.200'), 'a crawler /24 is one client');
  assert.equal(key({}, 'page', '10.0.0.5'), '10.0.0.5 connection :40000', 'a trusted peer naming no client: per connection');
});

// --- route -----------------------------------------------------------------------------------

test('route: every lane has its pool, balancer and priority; upgrade places are bounded per client and in all', () => {
  const pools = buildPools(config);
  const routes = buildRoutes(config, pools);
  assert.deepEqual(Object.keys(routes).sort(), ['bot', 'browser', 'clone', 'page']);
  assert.equal(routes.page.pool, pools.get('web'));
  assert.equal(routes.page.priority, 1);
  assert.equal(routes.browser.priority, 0);
  const closers: Array<() => void> = [];
  const socket = () => ({ once: (_event: 'close', listener: () => void) => closers.push(listener) });
  assert.equal(reserveUpgradePlace(routes.page, 'a', socket()), undefined);
  assert.equal(reserveUpgradePlace(routes.page, 'a', socket())?.status, 503, 'one per client (perClient.maxUpgraded 1)');
  assert.equal(reserveUpgradePlace(routes.page, 'b', socket()), undefined);
  assert.equal(reserveUpgradePlace(routes.page, 'c', socket())?.status, 503, 'two in all (maxUpgraded 2)');
  for (const close of closers) close();
  assert.equal(routes.page.pool.upgraded, 0, 'a closed socket gives its place back');
  assert.equal(reserveUpgradePlace(routes.page, 'c', socket()), undefined);
  for (const pool of pools.values()) pool.close();
});

// --- scheduler -------------------------------------------------------------------------------

test('scheduler: named jobs, run now if asked, all stopped at once, no duplicates', async () => {
  const scheduler = new Scheduler();
  let runs = 0;
  scheduler.every('count', 5, () => runs++, true);
  assert.equal(runs, 1, 'ran at once');
  assert.throws(() => scheduler.every('count', 5, () => {}), /already scheduled/);
  await new Promise((resolve) => setTimeout(resolve, 40));
  assert.ok(runs > 2, `ran ${runs} times`);
  assert.deepEqual(scheduler.jobs, ['count']);
  scheduler.stop();
  const stoppedAt = runs;
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(runs, stoppedAt, 'nothing runs after stop');
  assert.deepEqual(scheduler.jobs, []);
});
