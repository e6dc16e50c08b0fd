import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { request } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

describe('routing: lanes, pools and balancing', () => {
  const apps: AppProcess[] = [];
  let proxy: StartedProxy;

  before(async () => {
    for (const name of ['web-a', 'web-b', 'clone-a', 'clone-b', 'clone-c', 'bot-a']) apps.push(await startApp(name));
    const [webA, webB, cloneA, cloneB, cloneC, botA] = apps;
    proxy = await startProxy({
      pools: { web: [webA.address, webB.address], clone: [cloneA.address, cloneB.address, cloneC.address], bot: [botA.address] },
      config: { bots: { tokens: ['s3cret-bot-token'] } },
    });
  });
  after(async () => {
    await proxy.close();
    await Promise.all(apps.map((app) => app.stop()));
  });

  test('each class goes to its lane and pool, and the response says which', async () => {
    const cases: Array<[string, Record<string, string>, string, RegExp]> = [
      ['/repo', {}, 'page', /^web-[ab]$/],
      ['/repo', { 'user-agent': 'Mozilla/5.0 (X11) Chrome/120', accept: 'text/html,*/*' }, 'browser', /^web-[ab]$/],
      ['/repo', { 'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate' }, 'browser', /^web-[ab]$/],
      ['/repo/info/refs?service=git-upload-pack', { 'user-agent': 'git/2.39.5' }, 'clone', /^clone-[abc]$/],
      ['/repo?cmd=capabilities', { 'user-agent': 'mercurial/proto-1.0 (Mercurial 6.3.2)' }, 'clone', /^clone-[abc]$/],
      ['/repo/info/refs?service=git-upload-pack', { 'user-agent': 'git/2.39.5 Jenkins' }, 'bot', /^bot-a$/],
      ['/repo', { 'x-switchyard-bot-token': 's3cret-bot-token' }, 'bot', /^bot-a$/],
    ];
    for (const [path, headers, lane, app] of cases) {
      const response = await request(proxy.url + path, { headers });
      assert.equal(response.status, 200, `${path} ${JSON.stringify(headers)}`);
      assert.equal(response.headers['x-switchyard-lane'], lane, `${path} ${JSON.stringify(headers)}`);
      assert.match(String(response.headers['x-app']), app);
      // the proxy's name for the worker and the app that really answered agree
      const worker = String(response.headers['x-switchyard-worker']);
      assert.match(worker, new RegExp(`^${app.source.slice(1, 2) === 'w' ? 'web' : app.source.includes('clone') ? 'clone' : 'bot'}-\\d$`));
    }
  });

  test('a wrong bot token does not make a bot', async () => {
    const response = await request(`${proxy.url}/repo`, { headers: { 'x-switchyard-bot-token': 's3cret-bot-tokeX' } });
    assert.equal(response.headers['x-switchyard-lane'], 'page');
  });

  test('round-robin alternates between the web workers', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(String((await request(`${proxy.url}/`)).headers['x-app']));
    assert.deepEqual(new Set(seen), new Set(['web-a', 'web-b']));
    for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], `round-robin repeated a worker: ${seen}`);
  });

  test('ip-hash keeps a client on one clone worker and spreads clients over the pool', async () => {
    const homes = new Map<string, Set<string>>();
    for (let client = 1; client <= 30; client++) {
      const ip = `198.51.100.${client}`;
      for (let i = 0; i < 3; i++) {
        // loopback is a trusted proxy by default, so X-Forwarded-For names the client
        const response = await request(`${proxy.url}/r/info/refs?service=git-upload-pack`, {
          headers: { 'user-agent': 'git/2.40', 'x-forwarded-for': ip },
        });
        const set = homes.get(ip) ?? new Set();
        set.add(String(response.headers['x-app']));
        homes.set(ip, set);
      }
    }
    for (const [ip, workers] of homes) assert.equal(workers.size, 1, `${ip} moved between ${[...workers]}`);
    const used = new Set([...homes.values()].map((workers) => [...workers][0]));
    assert.ok(used.size >= 2, `30 clients all hashed to ${[...used]}`);
  });

  test('the worker sees trusted forwarding headers', async () => {
    const response = await request(`${proxy.url}/echo`, { headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' } });
    const echoed = JSON.parse(response.body);
    assert.equal(echoed.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(echoed.headers['x-forwarded-proto'], 'https');
    assert.equal(echoed.headers['x-real-ip'], '203.0.113.9');
  });

  test('hop-by-hop headers from the client do not reach the worker', async () => {
    const response = await request(`${proxy.url}/echo`, { headers: { connection: 'close, x-private', 'x-private': 'secret', 'keep-alive': 'timeout=1' } });
    const echoed = JSON.parse(response.body);
    assert.equal(echoed.headers['x-private'], undefined);
    assert.equal(echoed.headers['keep-alive'], undefined);
    assert.notEqual(echoed.headers.connection, 'close');
  });

  test("the worker's hop-by-hop response headers do not reach the client; repeated headers stay separate", async () => {
    const response = await request(`${proxy.url}/hop-headers`);
    assert.equal(response.status, 200);
    assert.equal(response.body, 'chunked body\n');
    assert.equal(response.headers['keep-alive'], undefined, 'the worker keep-alive timeout leaked to the client');
    assert.equal(response.headers['x-conn-private'], undefined);
    assert.equal(response.headers['proxy-connection'], undefined);
    // the proxy's own Connection header (this client asked to close), not the worker's list
    assert.equal(response.headers.connection, 'close');
    assert.deepEqual(response.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
    assert.equal(response.headers['x-kept'], 'yes');
    assert.equal(response.headers['x-switchyard-lane'], 'page');
  });

  test('the last response a keep-alive policy allows on a connection says close, and keeps its headers', async () => {
    const capped = await startProxy({ pools: { web: [apps[0].address] }, config: { proxy: { clients: { page: { maxRequestsPerSocket: 1 } } } } });
    try {
      const response = await request(`${capped.url}/hop-headers`);
      assert.equal(response.headers.connection, 'close');
      assert.deepEqual(response.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
      assert.equal(response.headers['x-switchyard-lane'], 'page');
      assert.equal(response.body, 'chunked body\n');
    } finally {
      await capped.close();
    }
  });

  test('request bodies stream through to the worker', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const response = await request(`${proxy.url}/echo`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(JSON.parse(response.body).bodyBytes, body.length);
  });

  test('the worker header is left out without debugHeaders', async () => {
    const quiet = await startProxy({ pools: { web: [apps[0].address] }, config: { proxy: { debugHeaders: false } } });
    try {
      const response = await request(`${quiet.url}/`);
      assert.equal(response.headers['x-switchyard-lane'], 'page');
      assert.equal(response.headers['x-switchyard-worker'], undefined);
    } finally {
      await quiet.close();
    }
  });

  test('/healthz answers on the proxy itself', async () => {
    const response = await request(`${proxy.url}/healthz`);
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.body), { status: 'ok' });
  });
});
