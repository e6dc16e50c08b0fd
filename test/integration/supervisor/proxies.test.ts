// Proxies announce themselves in Redis and a supervisor finds every one: two real proxy processes
// (hosts "a" and "b"), a real supervisor process with REDIS_URL on a private Redis, static targets
// (no PM2 app). GET /api/fleet, /metrics, drains to the discovered proxy, a frozen and a stopped one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { PROJECT_ROOT } from '../../../lib/config.ts';
import { fleetKey, signProxyAnnouncement, verifyProxyAnnouncement } from '../../../lib/fleet-signing.ts';
import { PROXIES_KEY, PROXY_PRUNE_MS } from '../../../lib/proxy-announcement.ts';
import { FleetPublisher } from '../../../supervisor/fleet-publisher.ts';
import { Pm2Client } from '../../../supervisor/pm2-client.ts';
import { ProxyControlClient } from '../../../supervisor/proxy-control.ts';
import { ProxyDirectory, type ProxyView } from '../../../supervisor/proxy-directory.ts';
import { historyDatabaseEnv } from '../../helpers/history-db.ts';
import { request, sleep, waitFor } from '../../helpers/http.ts';
import { PrivateRedis } from '../../helpers/private-redis.ts';
import { spawnUntil, startApp, startProxyProcess, type AppProcess, type ProxyProcess } from '../../helpers/processes.ts';
import { freePort } from '../../helpers/worker-harness.ts';

const TOKEN = 'proxies-test-admin-token-0123456789';
const silent = pino({ level: 'silent' });

describe('proxies in Redis: announced, discovered, listed, scraped, told about drains', () => {
  let redis: PrivateRedis;
  let apps: AppProcess[];
  const proxies: Record<'a' | 'b', ProxyProcess & { controlUrl: string }> = {} as never;
  let supervisor: ChildProcess;
  let supervisorUrl: string;

  async function startProxy(host: 'a' | 'b', supervisorPort: number, options: { master?: boolean } = {}) {
    const controlPort = await freePort();
    const proxy = await startProxyProcess(
      {
        proxy: { host: '127.0.0.1', port: 0, control: { port: controlPort } },
        supervisor: { port: supervisorPort },
        pools: { web: { targets: apps.map((app) => app.address) } },
        lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } },
      },
      { REDIS_URL: redis.url, SWITCHYARD_ADMIN_TOKEN: TOKEN, SWITCHYARD_HOST: host },
      options,
    );
    return Object.assign(proxy, { controlUrl: `http://127.0.0.1:${controlPort}` });
  }

  const api = async (route: string) => {
    const response = await request(`${supervisorUrl}${route}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(response.status, 200, response.body);
    return response.body;
  };
  const listed = async () => JSON.parse(await api('/api/fleet')).proxies as ProxyView[];
  const idOf = (host: 'a' | 'b') => `${host}:${proxies[host].port}`;

  before(async () => {
    redis = await PrivateRedis.create();
    apps = [await startApp('one'), await startApp('two')];
    const supervisorPort = await freePort();
    proxies.a = await startProxy('a', supervisorPort);
    proxies.b = await startProxy('b', supervisorPort);
    const data = path.dirname(proxies.a.configFile);
    ({ child: supervisor } = await spawnUntil(
      path.join(PROJECT_ROOT, 'supervisor', 'main.ts'),
      {
        SWITCHYARD_CONFIG: proxies.a.configFile,
        SWITCHYARD_DATA: data,
        SWITCHYARD_ADMIN_TOKEN: TOKEN,
        SWITCHYARD_HOST: 'a',
        REDIS_URL: redis.url,
        ...(await historyDatabaseEnv()),
        PM2_HOME: path.join(data, 'pm2'),
        LOG_LEVEL: 'info',
      },
      /"msg":"supervisor listening"/,
    ));
    supervisorUrl = `http://127.0.0.1:${supervisorPort}`;
  });

  after(async () => {
    if (supervisor && supervisor.exitCode === null) {
      supervisor.kill('SIGKILL');
      await once(supervisor, 'exit');
    }
    if (proxies.a) {
      const pm2 = new Pm2Client(path.join(path.dirname(proxies.a.configFile), 'pm2'));
      await pm2.killDaemon().catch(() => {}); // the supervisor's connection started one
      pm2.disconnect();
    }
    for (const proxy of Object.values(proxies)) {
      proxy.child.kill('SIGCONT');
      await proxy.stop();
      rmSync(path.dirname(proxy.configFile), { recursive: true, force: true });
    }
    await Promise.all((apps ?? []).map((app) => app.stop()));
    await redis?.remove();
  });

  test('GET /api/fleet lists both proxies, up, with what they announced; this host\'s first', async () => {
    await waitFor(async () => (await listed()).filter((proxy) => proxy.up).length === 2, 'both proxies up in /api/fleet', 15_000);
    for (let i = 0; i < 5; i++) assert.equal((await request(`${proxies.b.url}/`)).status, 200);
    const [a, b] = await listed();
    assert.equal(a.id, idOf('a'), 'the configured proxy goes by its announced id, first');
    assert.equal(b.id, idOf('b'));
    assert.deepEqual(
      { host: b.host, address: b.address, control: b.control, pid: b.pid },
      { host: 'b', address: `127.0.0.1:${proxies.b.port}`, control: proxies.b.controlUrl, pid: proxies.b.child.pid },
    );
    assert.match(b.version!, /^0\.1\.0/);
    assert.ok(Date.parse(b.startedAt!) <= Date.now() && Date.now() - Date.parse(b.lastSeenAt!) < 30_000);
    assert.equal(typeof b.clientConnections, 'number');
    assert.equal(a.control, proxies.a.controlUrl);
  });

  test('/metrics: every proxy\'s series with its proxy label, each family once, switchyard_proxy_up 1', async () => {
    const metrics = await api('/metrics');
    assert.match(metrics, new RegExp(`switchyard_requests_total\\{proxy="${idOf('b')}",lane="page",code="200"\\} [1-9]`), 'the requests through b');
    assert.match(metrics, new RegExp(`switchyard_queue_depth\\{proxy="${idOf('a')}",pool="web"\\} 0`));
    for (const host of ['a', 'b'] as const) assert.match(metrics, new RegExp(`switchyard_proxy_up\\{proxy="${idOf(host)}"\\} 1`));
    assert.equal(metrics.match(/^# TYPE switchyard_requests_total /gm)?.length, 1);
    assert.equal(metrics.match(/^# HELP switchyard_request_duration_seconds /gm)?.length, 1);
    assert.match(metrics, /^switchyard_worker_recycles_total|^# TYPE switchyard_worker_recycles_total/m, "the supervisor's own series follow");
  });

  test('a drain published through a directory reaches the discovered proxy over its control API', async () => {
    const directory = new ProxyDirectory({
      local: new ProxyControlClient(proxies.a.controlUrl, TOKEN),
      localId: 'a:0',
      selfHost: 'a',
      token: TOKEN,
      redis: { url: redis.url, adminToken: TOKEN },
      log: silent,
    });
    const publisher = new FleetPublisher(() => directory.clients(), undefined, silent); // no Redis pub/sub: the control API only
    try {
      await directory.poll();
      assert.deepEqual(directory.clients().map((client) => client.baseUrl).sort(), [proxies.a.controlUrl, proxies.b.controlUrl].sort());
      await publisher.publish({ 'web-1': 'draining' });
      for (const host of ['a', 'b'] as const) {
        const state = await proxies[host].state();
        assert.equal(state.pools[0].workers.find((worker: { name: string }) => worker.name === 'web-1').state, 'draining', `proxy ${host}`);
      }
      await publisher.publish({ 'web-1': 'ready' });
      assert.equal((await proxies.b.state()).pools[0].workers[1].state, 'ready');
    } finally {
      await publisher.close();
      await directory.stop();
    }
  });

  test('forged and long-gone entries: the first ignored, the second pruned from the hash', async () => {
    const client = redis.client();
    try {
      const forged = { id: 'x:1', host: 'x', address: '127.0.0.1:1', control: 'http://127.0.0.1:1', version: '9', startedAt: new Date().toISOString(), pid: 1, at: Date.now() };
      await client.hset(PROXIES_KEY, 'x:1', signProxyAnnouncement(fleetKey('some-other-admin-token-0123456789'), forged));
      const gone = { ...forged, id: 'y:1', host: 'y', at: Date.now() - PROXY_PRUNE_MS - 60_000 };
      await client.hset(PROXIES_KEY, 'y:1', signProxyAnnouncement(fleetKey(TOKEN), gone));
      await waitFor(async () => (await client.hexists(PROXIES_KEY, 'y:1')) === 0, 'the gone entry pruned', 10_000);
      assert.deepEqual((await listed()).map((proxy) => proxy.id), [idOf('a'), idOf('b')], 'neither is listed');
      await client.hdel(PROXIES_KEY, 'x:1');
    } finally {
      client.disconnect();
    }
  });

  test('a frozen proxy goes down within a few heartbeats, its series absent and proxy_up 0; it comes back', async () => {
    proxies.b.child.kill('SIGSTOP');
    try {
      await waitFor(async () => (await listed()).find((proxy) => proxy.id === idOf('b'))?.up === false, 'b down', 20_000);
      const metrics = await api('/metrics');
      assert.match(metrics, new RegExp(`switchyard_proxy_up\\{proxy="${idOf('b')}"\\} 0`));
      assert.doesNotMatch(metrics, new RegExp(`switchyard_requests_total\\{proxy="${idOf('b')}"`), "an unreachable proxy's series are absent");
      assert.match(metrics, new RegExp(`switchyard_proxy_up\\{proxy="${idOf('a')}"\\} 1`));
    } finally {
      proxies.b.child.kill('SIGCONT');
    }
    await waitFor(async () => (await listed()).find((proxy) => proxy.id === idOf('b'))?.up === true, 'b up again', 20_000);
  });

  test('restart-proxy: the successor takes over the entry, and the retiring process leaves it alone', async () => {
    const proxy = await startProxy('a', await freePort(), { master: true });
    const client = redis.client();
    const id = `a:${proxy.port}`;
    const entryPid = async () => {
      const text = await client.hget(PROXIES_KEY, id);
      return text === null ? null : verifyProxyAnnouncement(fleetKey(TOKEN), id, text).ok ? (JSON.parse(JSON.parse(text).payload) as { pid: number }).pid : -1;
    };
    try {
      await waitFor(async () => (await entryPid()) !== null, 'the first process announced', 10_000);
      const first = (await proxy.state()).process.pid;
      assert.equal(await entryPid(), first);
      const answer = await proxy.control('POST', '/restart');
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      const successor = answer.body.to.pid as number;
      await waitFor(async () => (await proxy.state()).process.predecessor?.exited !== undefined, 'the retiring process exited', 30_000);
      assert.equal(await entryPid(), successor, 'the entry is the successor\'s after the predecessor has gone');
      await sleep(2500); // past a heartbeat: nothing of the retiring process overwrites it
      assert.equal(await entryPid(), successor);
      assert.equal(await proxy.stop('SIGTERM'), 0);
      assert.equal(await client.hexists(PROXIES_KEY, id), 0, 'a clean stop through the master removes it');
    } finally {
      client.disconnect();
      await proxy.stop();
      rmSync(path.dirname(proxy.configFile), { recursive: true, force: true });
    }
  });

  test('a proxy that stops cleanly removes its entry and leaves the list', async () => {
    const client = redis.client();
    try {
      assert.equal(await proxies.b.stop('SIGTERM'), 0);
      assert.equal(await client.hexists(PROXIES_KEY, idOf('b')), 0, 'removed on the way out');
      await waitFor(async () => (await listed()).every((proxy) => proxy.id !== idOf('b')), 'b no longer listed', 10_000);
    } finally {
      client.disconnect();
    }
  });
});
