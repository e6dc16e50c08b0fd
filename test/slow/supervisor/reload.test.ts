// A config reload applied to a running PM2 stack (issue 20): the recycle policy in force at once,
// a worker added (started, ready, taking traffic), a worker removed under load (drained first:
// no request fails), a pool added and removed, an invalid file refused with nothing changed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { deepMerge } from '../../../proxy/testing.ts';
import { startBoundedLoad, summarizeOutcomes } from '../../helpers/bounded-load.ts';
import { startFleetStack, type FleetStack, type FleetWorkerView } from '../../helpers/fleet-stack.ts';
import { historyDatabaseEnv } from '../../helpers/history-db.ts';
import { request, waitFor } from '../../helpers/http.ts';
import { freePort } from '../../helpers/worker-harness.ts';

interface Reloaded {
  supervisor: { changes: string[]; notApplied: string[] };
  proxies: Array<{ proxy: string; ok: boolean; changes: string[]; notApplied: string[]; error?: string }>;
}

describe('config reload on a running stack', () => {
  let stack: FleetStack;
  let original: string;

  before(async () => {
    stack = await startFleetStack({ pools: { web: { instances: 2, drainTimeoutSec: 20 } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } }, await historyDatabaseEnv());
    original = readFileSync(stack.file, 'utf8');
  });
  after(async () => {
    await stack?.stop();
  });

  /** Writes the stack's original config with `changes` merged in. */
  const writeConfig = (changes: Record<string, unknown>) => writeFileSync(stack.file, stringify(deepMerge(parse(original), changes)));
  const reload = () => stack.api<Reloaded>('POST', '/api/reload');
  /** This supervisor's events after id `after` (from its memory: the history database is shared by test runs). */
  const eventsAfter = async (after = 0) =>
    (await stack.api('GET', `/api/events?after=${after}`)).body.events as Array<{ id: number; kind: string; worker?: string; reason: string; detail: Record<string, any> }>;
  const lastEventId = async () => (await eventsAfter()).at(-1)?.id ?? 0;
  const workers = async (pool = 'web') => (await stack.fleet()).filter((worker) => worker.pool === pool);
  const pm2Apps = async (name: string) => (await stack.pm2.list()).filter((process) => process.name === name);
  const servedBy = async (headers: Record<string, string> = {}) => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const response = await request(`${stack.proxyUrl}/`, { headers });
      assert.equal(response.status, 200);
      seen.add(String(response.headers['x-switchyard-worker']));
    }
    return [...seen].sort();
  };
  const reloadOk = async (): Promise<Reloaded> => {
    const { status, body } = await reload();
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(
      body.proxies.map((proxy) => [proxy.ok, proxy.error]),
      [[true, undefined]],
    );
    return body;
  };

  test('an invalid file is refused with its problems, and nothing changes', async () => {
    const before = await stack.api('GET', '/api/fleet');
    writeConfig({ pools: { web: { instances: -1 } } });
    const { status, body } = await stack.api<{ error: string; problems: string[] }>('POST', '/api/reload');
    assert.equal(status, 422);
    assert.equal(body.problems.length, 1, JSON.stringify(body));
    assert.match(body.problems[0], /switchyard\.yaml:\d+: pools\.web\.instances = -1: /);
    assert.match(body.error, /^invalid configuration in /);
    const after = await stack.api('GET', '/api/fleet');
    assert.deepEqual(after.body.pools.map((pool: { name: string; recycle: unknown; workers: FleetWorkerView[] }) => [pool.name, pool.recycle, pool.workers.map((worker) => worker.name)]),
      before.body.pools.map((pool: { name: string; recycle: unknown; workers: FleetWorkerView[] }) => [pool.name, pool.recycle, pool.workers.map((worker) => worker.name)]));
    assert.equal((await pm2Apps('worker-web')).length, 2);
  });

  test('a lower maxRequests holds at once: a worker recycles after that many requests', async () => {
    const since = await lastEventId();
    writeConfig({ pools: { web: { recycle: { maxRequests: 15, jitter: 0 } } } });
    const body = await reloadOk();
    assert.deepEqual(body.supervisor, { changes: ['pools.web.recycle.maxRequests 0 -> 15', 'pools.web.recycle.jitter 0.1 -> 0'], notApplied: [] });
    const limits = (await stack.api('GET', '/api/fleet')).body.pools[0].workers.map((worker: { limits: { maxRequests: number } }) => worker.limits.maxRequests);
    assert.deepEqual(limits, [15, 15]);
    for (let i = 0; i < 40; i++) assert.equal((await request(`${stack.proxyUrl}/`)).status, 200);
    await waitFor(
      async () => (await eventsAfter(since)).some((event) => event.kind === 'recycle' && event.reason === 'requests'),
      'a recycle by request count',
      60_000,
    );
    writeConfig({});
    await reloadOk();
    await waitFor(async () => (await workers()).every((worker) => worker.state === 'ready'), 'every worker back', 60_000);
  });

  test('a worker added starts, becomes ready before the proxy hears of it, and takes traffic', async () => {
    writeConfig({ pools: { web: { instances: 3 } } });
    const started = Date.now();
    const body = await reloadOk();
    console.log(`reload test: a reload that adds a worker answered in ${Date.now() - started} ms`);
    assert.deepEqual(body.supervisor, { changes: ['pools.web.instances 2 -> 3'], notApplied: [] });
    // The answer comes once the new worker is up.
    const added = (await workers()).find((worker) => worker.name === 'web-2');
    assert.equal(added?.state, 'ready');
    const processes = await pm2Apps('worker-web');
    assert.equal(processes.length, 3);
    assert.ok(processes.some((process) => process.instance === 2 && process.pid === added!.pid));
    const health = JSON.parse((await request(`http://127.0.0.1:${stack.config.pools.web.portBase + 2}/_worker/health`)).body);
    assert.deepEqual([health.pool, health.index, health.pid], ['web', 2, added!.pid]);
    assert.deepEqual(await servedBy(), ['web-0', 'web-1', 'web-2']);
    const chartSeries = async () => (await stack.api('GET', '/api/dashboard')).body;
    await waitFor(async () => (await chartSeries()).keys.workers.includes('web-2'), 'the dashboard charts web-2');
    const { keys, samples } = await chartSeries();
    assert.ok(samples.every((sample: { rss: unknown[] }) => sample.rss.length === keys.workers.length), 'the points taken before have a place for it');
  });

  test('a worker removed under load is drained first: no request fails', async () => {
    const since = await lastEventId();
    const load = startBoundedLoad({ urls: [`${stack.proxyUrl}/`, `${stack.proxyUrl}/demo-git`], concurrency: 3, maxRequests: 3000, maxMs: 60_000, requestTimeoutMs: 20_000 });
    await waitFor(() => load.outcomes.some((outcome) => outcome.worker === 'web-2'), 'web-2 serves the load');
    writeConfig({});
    const body = await reloadOk();
    assert.deepEqual(body.supervisor, { changes: ['pools.web.instances 3 -> 2'], notApplied: [] });
    await waitFor(async () => (await pm2Apps('worker-web')).length === 2, 'web-2 stopped through PM2', 40_000);
    const outcomes = await load.stop();
    console.log(`reload test: removing web-2 under load: ${summarizeOutcomes(outcomes)}, slowest ${Math.max(...outcomes.map((outcome) => outcome.ms))} ms`);
    assert.deepEqual(outcomes.filter((outcome) => outcome.status !== 200), [], summarizeOutcomes(outcomes));
    assert.deepEqual((await workers()).map((worker) => [worker.name, worker.state]), [['web-0', 'ready'], ['web-1', 'ready']]);
    assert.deepEqual((await pm2Apps('worker-web')).map((process) => process.instance).sort(), [0, 1]);
    const events = (await eventsAfter(since)).filter((event) => event.worker === 'web-2');
    assert.deepEqual(events.map((event) => [event.kind, event.reason]), [['drain', 'reload'], ['stop', 'removed by a config reload']]);
    assert.equal(events[1].detail.drained, true);
    assert.deepEqual(await servedBy(), ['web-0', 'web-1']);
  });

  test('a pool added starts its PM2 app and gets its lane; removed, it is drained and deleted', async () => {
    writeConfig({ pools: { bot: { instances: 1, portBase: await freePort() } }, lanes: { bot: { pool: 'bot' } } });
    const body = await reloadOk();
    assert.deepEqual(body.supervisor, { changes: ['pools.bot added'], notApplied: [] });
    assert.deepEqual((await workers('bot')).map((worker) => [worker.name, worker.state]), [['bot-0', 'ready']]);
    assert.equal((await pm2Apps('worker-bot')).length, 1);
    assert.deepEqual(await servedBy({ 'user-agent': 'Jenkins' }), ['bot-0']);

    writeConfig({});
    assert.deepEqual((await reloadOk()).supervisor, { changes: ['pools.bot removed'], notApplied: [] });
    await waitFor(async () => (await pm2Apps('worker-bot')).length === 0, 'worker-bot deleted', 40_000);
    assert.deepEqual(await workers('bot'), []);
    assert.deepEqual(await servedBy({ 'user-agent': 'Jenkins' }), ['web-0', 'web-1']);
  });

  test('each reload is a fleet event with what changed', async () => {
    const reloads = (await eventsAfter()).filter((event) => event.kind === 'reload');
    assert.equal(reloads.length, 6, 'one per successful reload, none for the refused one');
    const added = reloads.find((event) => event.detail.changes.includes('pools.web.instances 2 -> 3'));
    assert.ok(added, JSON.stringify(reloads));
    assert.match(added.reason, /^\d+ changes? applied, 1 of 1 proxy reloaded$/);
    assert.equal(added.detail.source, 'api');
    assert.deepEqual(added.detail.proxies, [`${stack.controlUrl}: reloaded`]);
  });
});
