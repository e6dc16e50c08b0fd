import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, sleep, waitFor } from '../../helpers/http.ts';
import { startFleetStack, TEST_TOKEN, type FleetStack } from '../../helpers/fleet-stack.ts';
import { historyDatabaseEnv } from '../../helpers/history-db.ts';

describe('the supervised fleet under PM2: API, crashes, a stopped supervisor', () => {
  let stack: FleetStack;

  before(async () => {
    stack = await startFleetStack({ pools: { web: { instances: 2 }, clone: { instances: 2 } }, lanes: { bot: { pool: 'web' } } }, await historyDatabaseEnv());
  });
  after(async () => {
    await stack?.stop();
  });

  const proxyState = async () => JSON.parse((await request(`${stack.controlUrl}/state`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).body);
  const proxyWorker = async (name: string) =>
    (await proxyState()).pools.flatMap((pool: { workers: Array<{ name: string; state: string }> }) => pool.workers).find((worker: { name: string }) => worker.name === name);

  test('every API route needs the admin token; /healthz does not', async () => {
    for (const [method, route] of [
      ['GET', '/api/fleet'],
      ['GET', '/api/events'],
      ['GET', '/metrics'],
      ['POST', '/api/workers/web-0/drain'],
      ['POST', '/api/workers/web-0/recycle'],
      ['POST', '/api/pools/web/roll'],
    ]) {
      const response = await request(`${stack.supervisorUrl}${route}`, { method });
      assert.equal(response.status, 401, `${method} ${route}`);
      const wrong = await request(`${stack.supervisorUrl}${route}`, { method, headers: { authorization: 'Bearer not-the-token' } });
      assert.equal(wrong.status, 401, `${method} ${route} with a wrong token`);
    }
    assert.equal((await request(`${stack.supervisorUrl}/healthz`)).status, 200);
  });

  test('GET /api/fleet, /api/events and /metrics', async () => {
    const fleet = await stack.fleet();
    assert.deepEqual(fleet.map((worker) => worker.name).sort(), ['clone-0', 'clone-1', 'web-0', 'web-1']);
    for (const worker of fleet) {
      assert.ok(worker.state === 'ready' && worker.pid && worker.pmId !== undefined && worker.rssBytes! > 0, JSON.stringify(worker));
    }
    const events = (await stack.api('GET', `/api/events?since=${new Date(Date.now() - 600_000).toISOString()}`)).body.events;
    assert.ok(events.some((event: { kind: string }) => event.kind === 'start'));
    assert.equal((await stack.api('GET', '/api/events?since=yesterday')).status, 400);
    await request(`${stack.proxyUrl}/`);
    const metrics = (await stack.api('GET', '/metrics')).body as string;
    assert.match(metrics, /switchyard_worker_rss_bytes\{worker="web-0",host="[^"]+"\} \d+/);
    assert.match(metrics, /switchyard_requests_total\{proxy="[^"]+",lane="page",code="200"\} \d+/, 'the proxy metrics are included, labelled');
  });

  test('unknown workers and pools are 404; draining the last ready worker is 409', async () => {
    assert.equal((await stack.api('POST', '/api/workers/web-9/drain')).status, 404);
    assert.equal((await stack.api('POST', '/api/workers/nope/recycle')).status, 404);
    assert.equal((await stack.api('POST', '/api/pools/nope/roll')).status, 404);
    assert.equal((await stack.api('POST', '/api/workers/web-0/drain')).status, 202);
    await waitFor(async () => (await proxyWorker('web-0')).state === 'draining', 'the proxy sees the drain');
    for (let i = 0; i < 6; i++) assert.equal((await request(`${stack.proxyUrl}/`)).headers['x-switchyard-worker'], 'web-1');
    assert.equal((await stack.api('POST', '/api/workers/web-1/drain')).status, 409);
    assert.equal((await stack.api('POST', '/api/workers/web-0/ready')).status, 200);
    await waitFor(async () => (await proxyWorker('web-0')).state === 'ready', 'the proxy sees web-0 back');
  });

  test('recycle one worker: a new process, back to ready, counted in the metrics', async () => {
    const before = (await stack.fleet()).find((worker) => worker.name === 'clone-1')!;
    assert.equal((await stack.api('POST', '/api/workers/clone-1/recycle')).status, 202);
    await waitFor(
      async () => {
        const now = (await stack.fleet()).find((worker) => worker.name === 'clone-1')!;
        return now.state === 'ready' && now.pid !== before.pid;
      },
      'clone-1 recycled',
      30_000,
    );
    assert.match((await stack.api('GET', '/metrics')).body, /switchyard_worker_recycles_total\{pool="clone",reason="manual",host="[^"]+"\} 1/);
  });

  test('a worker killed with SIGKILL: crash event, restarted by PM2, ready again', async () => {
    const since = new Date().toISOString();
    const victim = (await stack.fleet()).find((worker) => worker.name === 'web-1')!;
    process.kill(victim.pid!, 'SIGKILL');
    for (let i = 0; i < 10; i++) assert.equal((await request(`${stack.proxyUrl}/`)).status, 200, 'the proxy routes around the dead worker');
    await waitFor(
      async () => (await stack.api('GET', `/api/events?since=${since}`)).body.events.some((event: { kind: string; worker: string }) => event.kind === 'crash' && event.worker === 'web-1'),
      'crash event',
      10_000,
    );
    await waitFor(
      async () => {
        const now = (await stack.fleet()).find((worker) => worker.name === 'web-1')!;
        return now.state === 'ready' && now.pid !== victim.pid;
      },
      'web-1 ready again',
      30_000,
    );
    await waitFor(async () => (await proxyWorker('web-1')).state === 'ready', 'the proxy routes to web-1 again', 10_000);
  });

  test('with the supervisor stopped, the proxy keeps routing on its last known state', async () => {
    assert.equal((await stack.api('POST', '/api/workers/clone-0/drain')).status, 202);
    await waitFor(async () => (await proxyWorker('clone-0')).state === 'draining', 'drain applied');
    await stack.pm2.stop('supervisor');
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await request(`${stack.proxyUrl}/`)).status);
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal((await proxyWorker('clone-0')).state, 'draining', 'the last known drain stays');
    await sleep(1000);
    assert.equal((await request(`${stack.proxyUrl}/demo-git/info/refs?service=git-upload-pack`, { headers: { 'user-agent': 'git/2.39' } })).status, 200);
    // A restarted supervisor reconciles: a drain nobody owns any more is lifted.
    await stack.pm2.restart('supervisor');
    await waitFor(async () => (await proxyWorker('clone-0')).state === 'ready', 'reconciled after the supervisor restart', 30_000);
  });
});
