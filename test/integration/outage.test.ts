import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { TcpRelay } from '../helpers/tcp-relay.ts';
import { startApp, startProxyProcess, type AppProcess, type ProxyProcess } from '../helpers/processes.ts';
import { request, sleep, waitFor } from '../helpers/http.ts';
import { copyOfFixture, removeDir, startWorker, type RunningWorker } from '../helpers/worker-harness.ts';
import pino from 'pino';
import { FLEET_STATE_KEY } from '../../lib/fleet-channel.ts';
import { FleetPublisher } from '../../supervisor/fleet-publisher.ts';

// A Redis outage in the middle of a run, made real by cutting a relay in front of the machine's
// Redis: routing and pages go on, and once Redis is back the shared state flows again.
describe('Redis outage mid-run', () => {
  const relay = new TcpRelay(6379);
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const token = `outage-test-admin-token-${process.pid}`;
  // signs what it publishes, as the supervisor does: the proxy ignores unsigned fleet messages
  const publisher = new FleetPublisher([], { url: 'redis://127.0.0.1:6379', adminToken: token }, pino({ level: 'silent' }));
  let apps: AppProcess[];
  let proxy: ProxyProcess;
  let worker: RunningWorker;
  let fixture: { data: string; repos: string };

  before(async () => {
    await relay.start();
    const redisUrl = `redis://127.0.0.1:${relay.port}`;
    apps = [await startApp('one'), await startApp('two')];
    proxy = await startProxyProcess(
      { proxy: { host: '127.0.0.1', port: 0, healthCheck: { intervalMs: 200 } }, pools: { web: { targets: apps.map((app) => app.address) } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } },
      { REDIS_URL: redisUrl, SWITCHYARD_ADMIN_TOKEN: token },
    );
    fixture = await copyOfFixture();
    worker = await startWorker({ ...fixture, env: { REDIS_URL: redisUrl } });
    await redis.del(FLEET_STATE_KEY);
  });
  after(async () => {
    await redis.del(FLEET_STATE_KEY);
    redis.disconnect();
    await publisher.close();
    await proxy.stop();
    await worker.stop();
    await Promise.all(apps.map((app) => app.stop()));
    await relay.cut();
    await removeDir(fixture.data);
  });

  const publish = (states: Parameters<FleetPublisher['publish']>[0]) => publisher.publish(states);
  // the worker's cache keys: namespaced by its repos directory (worker/cache/index.ts)
  const workerCacheKeys = () => redis.keys(`switchyard:worker:v1:${createHash('sha1').update(fixture.repos).digest('hex').slice(0, 12)}:*`);
  const appsServing = async (count: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) seen.add(String((await request(`${proxy.url}/`)).headers['x-app']));
    return seen;
  };

  test('drains published over Redis reach the proxy', async () => {
    await publish({ 'web-0': 'draining' });
    await waitFor(async () => (await appsServing(4)).size === 1, 'web-0 drained');
    await publish({ 'web-0': 'ready' });
    await waitFor(async () => (await appsServing(4)).size === 2, 'web-0 back');
  });

  test('while Redis is down the proxy keeps routing and the worker keeps serving pages', async () => {
    await relay.cut();
    for (let i = 0; i < 10; i++) assert.equal((await request(`${proxy.url}/`)).status, 200);
    for (const page of ['/', '/demo-git', '/demo-hg', '/demo-git']) {
      const response = await request(`${worker.url}${page}`, { timeoutMs: 10_000 });
      assert.equal(response.status, 200, `${page} during the outage`);
    }
    assert.equal((await workerCacheKeys()).length, 0, 'nothing reached Redis during the outage');
    // a drain decided during the outage is stored in Redis only (the proxy cannot hear it yet)
    await publish({ 'web-1': 'draining' });
    await sleep(300);
    assert.equal((await appsServing(4)).size, 2, 'nothing changed while the proxy was cut off');
  });

  test('when Redis returns, the proxy catches up with the current state and the cache is shared again', async () => {
    await relay.restore();
    await waitFor(async () => {
      const seen = await appsServing(4);
      return seen.size === 1 && seen.has('one');
    }, 'the drain stored during the outage was applied on reconnect', 15_000);
    await publish({ 'web-1': 'ready' });
    await waitFor(async () => (await appsServing(4)).size === 2, 'web-1 back');
    // A new revision name each time: a fresh cache key, so each try writes through to Redis.
    let attempt = 0;
    await waitFor(async () => {
      await request(`${worker.url}/demo-git/tree/no-such-rev-${attempt++}/`, { timeoutMs: 10_000 });
      return (await workerCacheKeys()).length > 0;
    }, 'worker cache entries reach Redis again', 20_000);
  });
});
