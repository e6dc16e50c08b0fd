import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startApp, startProxyProcess, type AppProcess } from '../helpers/processes.ts';
import { openKeepAlive, rawExchange, request, sleep, statusOf, waitFor } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';
import { encodeProxyV1, encodeProxyV2 } from '../../proxy/proxy-protocol-encode.ts';

describe('load-balancer awareness, static files, websockets, shutdown', () => {
  let app: AppProcess;
  let staticRoot: string;
  const proxies: StartedProxy[] = [];

  before(async () => {
    app = await startApp('edge');
    staticRoot = mkdtempSync(path.join(tmpdir(), 'switchyard-static-'));
    mkdirSync(path.join(staticRoot, 'css'));
    writeFileSync(path.join(staticRoot, 'css', 'site.css'), 'body { color: #333 }\n');
  });
  after(async () => {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await app.stop();
  });

  async function proxyWith(config: Record<string, unknown>) {
    const proxy = await startProxy({ pools: { web: [app.address] }, config });
    proxies.push(proxy);
    return proxy;
  }
  const echo = (raw: string) => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, ''));

  test('X-Forwarded-For from an untrusted peer is ignored', async () => {
    const proxy = await proxyWith({ proxy: { trustedProxies: ['10.99.0.0/16'] } });
    const response = await request(`${proxy.url}/echo`, { headers: { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil' } });
    const seen = JSON.parse(response.body).headers;
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-real-ip'], '127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.notEqual(seen['x-forwarded-host'], 'evil');
  });

  test('a spoofed XFF cannot make an untrusted client a bot by CIDR', async () => {
    const proxy = await proxyWith({ proxy: { trustedProxies: ['10.99.0.0/16'] }, bots: { cidrs: ['1.2.3.0/24'] } });
    const response = await request(`${proxy.url}/`, { headers: { 'x-forwarded-for': '1.2.3.4' } });
    assert.equal(response.headers['x-switchyard-lane'], 'page');
  });

  test('PROXY protocol v1 and v2 from a trusted load balancer name the client', async () => {
    const proxy = await proxyWith({ proxy: { proxyProtocol: true }, bots: { cidrs: ['192.0.2.0/24'] } });
    const get = 'GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
    const v1 = await rawExchange(proxy.port, Buffer.concat([encodeProxyV1({ sourceAddress: '203.0.113.7', sourcePort: 5555, destinationAddress: '127.0.0.1', destinationPort: proxy.port }), Buffer.from(get)]));
    assert.equal(statusOf(v1), 200);
    assert.equal(echo(v1).headers['x-real-ip'], '203.0.113.7');
    const v2 = await rawExchange(proxy.port, Buffer.concat([encodeProxyV2({ sourceAddress: '2001:db8::5', sourcePort: 5555, destinationAddress: '::1', destinationPort: proxy.port }), Buffer.from(get)]));
    assert.equal(statusOf(v2), 200);
    assert.equal(echo(v2).headers['x-real-ip'], '2001:db8::5');
    const bot = await rawExchange(proxy.port, Buffer.concat([encodeProxyV1({ sourceAddress: '192.0.2.10', sourcePort: 1, destinationAddress: '127.0.0.1', destinationPort: 1 }), Buffer.from(get)]));
    assert.match(bot, /x-switchyard-lane: bot/i, 'classification uses the PROXY-protocol address');
  });

  test('with PROXY protocol on, a PROXY header from an untrusted peer is not believed', async () => {
    const proxy = await proxyWith({ proxy: { proxyProtocol: true, trustedProxies: ['10.99.0.0/16'] } });
    const get = 'GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
    const before = JSON.parse((await request(`http://${app.address}/stats`)).body).served;
    const spoofed = await rawExchange(proxy.port, Buffer.concat([encodeProxyV1({ sourceAddress: '203.0.113.7', sourcePort: 5555, destinationAddress: '127.0.0.1', destinationPort: proxy.port }), Buffer.from(get)]));
    assert.equal(statusOf(spoofed), 400, 'the header is read as a malformed request line');
    assert.equal(JSON.parse((await request(`http://${app.address}/stats`)).body).served, before, 'nothing reached the worker');
    // The same untrusted client speaking plain HTTP is served as itself.
    const plain = await rawExchange(proxy.port, get);
    assert.equal(statusOf(plain), 200);
    assert.equal(echo(plain).headers['x-real-ip'], '127.0.0.1');
  });

  test('with PROXY protocol on, a trusted peer without the header is refused', async () => {
    const proxy = await proxyWith({ proxy: { proxyProtocol: true, limits: { headersTimeoutMs: 500 } } });
    const raw = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal(raw, '');
  });

  test('static files are served by the proxy and never reach a worker', async () => {
    const proxy = await proxyWith({ proxy: { static: { root: staticRoot } } });
    const before = JSON.parse((await request(`http://${app.address}/stats`)).body).served;
    const css = await request(`${proxy.url}/_static/css/site.css`);
    assert.equal(css.status, 200);
    assert.match(String(css.headers['content-type']), /text\/css/);
    assert.equal(css.headers['x-switchyard-lane'], 'static');
    assert.ok(css.headers.etag);
    const again = await request(`${proxy.url}/_static/css/site.css`, { headers: { 'if-none-match': String(css.headers.etag) } });
    assert.equal(again.status, 304);
    assert.equal((await request(`${proxy.url}/_static/missing.js`)).status, 404);
    assert.equal(JSON.parse((await request(`http://${app.address}/stats`)).body).served, before);
    // Dot segments are resolved before routing (as the worker would get them): this is /etc/passwd,
    // outside the static prefix, and no file of the disk is served for it.
    const escape = await rawExchange(proxy.port, 'GET /_static/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    assert.doesNotMatch(escape, /root:/);
    assert.match(escape, /x-switchyard-lane: page/i);
  });

  test('WebSocket upgrades pass through to a worker', async () => {
    const proxy = await proxyWith({});
    const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws`);
    const reply = await new Promise<string>((resolve, reject) => {
      socket.on('open', () => socket.send('ping'));
      socket.on('message', (data) => resolve(String(data)));
      socket.on('error', reject);
    });
    assert.equal(reply, 'edge: ping');
    socket.close();
  });

  test("a WebSocket's 101 carries the lane and worker headers; upgrades get the same request checks", async () => {
    const proxy = await proxyWith({ proxy: { limits: { maxUrlBytes: 2048 } } });
    const upgradeHeaders = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws`);
      socket.on('upgrade', (res) => resolve(res.headers));
      socket.on('open', () => socket.close());
      socket.on('error', reject);
    });
    assert.equal(upgradeHeaders['x-switchyard-lane'], 'page');
    assert.match(String(upgradeHeaders['x-switchyard-worker']), /^web-\d+$/);
    const upgrade = (path: string, host = 't') =>
      rawExchange(proxy.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    assert.equal(statusOf(await upgrade(`/ws?pad=${'p'.repeat(3000)}`)), 414);
    assert.equal(statusOf(await upgrade('/ws', 'bad host/../x')), 400);
    assert.equal(statusOf(await upgrade('/_static/ws')), 404);
    // A worker that answers the upgrade with a plain response: relayed, with the lane header too.
    const refused = await upgrade('/not-a-websocket');
    assert.equal(statusOf(refused), 200, refused.slice(0, 200));
    assert.match(refused, /hello from edge/);
    assert.match(refused, /\r\nx-switchyard-lane: page\r\n/i);
  });

  test('SIGTERM: /healthz turns 503 first, in-flight requests finish, idle connections close, exit 0', async () => {
    const proxy = await startProxyProcess({
      proxy: { host: '127.0.0.1', port: 0, shutdown: { healthFailLeadMs: 700, graceMs: 5000 } },
      pools: { web: { targets: [app.address], concurrency: 2 } },
      lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } },
    });
    assert.equal((await request(`${proxy.url}/healthz`)).status, 200);
    const idle = await openKeepAlive(proxy.port, '/healthz');
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
    let inflightDone = false;
    const inflight = request(`${proxy.url}/slow?ms=3000`).finally(() => (inflightDone = true));
    await sleep(100);
    const exited = proxy.stop('SIGTERM');
    await waitFor(async () => (await request(`${proxy.url}/healthz`).catch(() => ({ status: 0 }))).status === 503, 'healthz fails first', 2000);
    const during = await request(`${proxy.url}/healthz`);
    assert.deepEqual(JSON.parse(during.body), { status: 'draining' });
    await idleClosed;
    assert.equal(inflightDone, false, 'the idle connection was closed while a request was still in flight, not at exit');
    const finished = await inflight;
    assert.equal(finished.status, 200, 'the in-flight request finished during the drain');
    assert.equal(await exited, 0);
    await assert.rejects(request(`${proxy.url}/healthz`), 'the listener is closed');
  });
});
