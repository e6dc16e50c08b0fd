import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, validateConfig, type SwitchyardConfig } from '../../lib/config.ts';
import { createBalancer } from '../../proxy/balancer.ts';
import { buildPools, reconcilePools, RetiredWorkers } from '../../proxy/pool-set.ts';
import type { Pool, Slot } from '../../proxy/pool.ts';
import { planReload, reloadFrom } from '../../proxy/reload.ts';

const LANES = { clone: { pool: 'web' }, bot: { pool: 'web' } };
const config = (raw: Record<string, unknown>): SwitchyardConfig => validateConfig(structuredClone({ lanes: LANES, ...raw }), 'test.yaml');
const targets = (...addresses: string[]) => config({ pools: { web: { targets: addresses } } });

/** Takes a slot of the pool now (the test's pools have free workers; one client holds one). */
function takeSlot(pool: Pool, client = 'c1'): Slot {
  let taken: Slot | undefined;
  pool.acquire({ balancer: createBalancer('round-robin'), key: client, client, lane: 'page', priority: 0 }, (failure, slot) => {
    assert.equal(failure, undefined);
    taken = slot;
  });
  return taken!;
}

test('planReload: what cannot change live keeps its running value; the rest is the new file', () => {
  const current = config({ proxy: { port: 8080 } });
  const next = config({ proxy: { port: 9090, debugHeaders: true } });
  const plan = planReload(current, next);
  assert.deepEqual(plan.applied.map((change) => change.key), ['proxy.debugHeaders']);
  assert.deepEqual(plan.notApplied.map((change) => change.key), ['proxy.port']);
  assert.equal(plan.config.proxy.port, 8080);
  assert.equal(plan.config.proxy.debugHeaders, true);
  assert.equal(next.proxy.port, 9090, 'the loaded config is not changed');
  assert.deepEqual(planReload(plan.config, next).applied, [], 'the running config is the new one but for the port');
});

test('planReload: an optional key the running config lacks is left out again', () => {
  const current = config({});
  const next = config({ proxy: { bodies: { spoolDir: '/tmp/elsewhere' } } });
  const plan = planReload(current, next);
  assert.equal(plan.config.proxy.bodies.spoolDir, current.proxy.bodies.spoolDir);
});

test('reloadFrom: an invalid file gives its problems and applies nothing; a valid one gives summary lines', () => {
  let applied = 0;
  const apply = (next: SwitchyardConfig) => {
    applied++;
    return planReload(config({}), next);
  };
  const refused = reloadFrom(() => {
    throw new ConfigError('/etc/sy.yaml', ['/etc/sy.yaml:3: proxy.port = "x": expected number']);
  }, apply);
  assert.deepEqual(refused, { ok: false, error: 'invalid configuration in /etc/sy.yaml', problems: ['/etc/sy.yaml:3: proxy.port = "x": expected number'] });
  assert.equal(applied, 0);
  const done = reloadFrom(() => config({ proxy: { debugHeaders: true, port: 1234 } }), apply);
  assert.equal(applied, 1);
  assert.deepEqual(done.ok && done.changes, ['proxy.debugHeaders false -> true']);
  assert.match(done.ok ? done.notApplied[0] : '', /^proxy\.port 8080 -> 1234 \(not applied: /);
});

test('reconcilePools: kept workers are the same objects with their slots; a removed one is closed only once its slot is back', () => {
  const pools = buildPools(targets('10.0.0.1:80', '10.0.0.2:80'));
  const web = pools.get('web')!;
  const [first, second] = web.upstreams;
  const slotOnSecond = [takeSlot(web, 'c1'), takeSlot(web, 'c2')].find((slot) => slot.upstream === second)!;
  const retired = new RetiredWorkers();

  const change = reconcilePools(pools, targets('10.0.0.1:80', '10.0.0.3:80'), retired);
  assert.equal(pools.get('web'), web, 'the pool object stays');
  assert.equal(web.upstreams[0], first);
  assert.equal(first.inflight, 1);
  assert.deepEqual(web.upstreams.map((upstream) => `${upstream.name} ${upstream.address}`), ['web-0 10.0.0.1:80', 'web-1 10.0.0.3:80']);
  assert.deepEqual(change.added.map(({ upstreams }) => upstreams.map((upstream) => upstream.address)), [['10.0.0.3:80']]);
  assert.deepEqual(change.retired, [second]);

  assert.deepEqual(retired.closeFinished(), [], 'its request is still in flight');
  slotOnSecond.release();
  assert.deepEqual(retired.closeFinished(), [second]);
  assert.deepEqual(retired.names(), []);
});

test('reconcilePools: a retired worker listed again before it has finished is taken back, not doubled', () => {
  const pools = buildPools(targets('10.0.0.1:80', '10.0.0.2:80'));
  const web = pools.get('web')!;
  const second = web.upstreams[1];
  takeSlot(web, 'c1');
  takeSlot(web, 'c2');
  const retired = new RetiredWorkers();
  reconcilePools(pools, targets('10.0.0.1:80'), retired);
  assert.deepEqual(retired.names(), ['web-1']);
  const change = reconcilePools(pools, targets('10.0.0.1:80', '10.0.0.2:80'), retired);
  assert.equal(web.upstreams[1], second);
  assert.equal(second.inflight, 1, 'its slot is still counted');
  assert.deepEqual(change.added, []);
  assert.deepEqual(retired.names(), []);
});

test('reconcilePools: settings of kept workers and pools follow; a new pool is built, a removed one serves its queue first', () => {
  const pools = buildPools(config({ pools: { web: { targets: ['10.0.0.1:80'] }, api: { targets: ['10.0.0.9:80'], queue: { max: 5 } } } }));
  const api = pools.get('api')!;
  const first = takeSlot(api);
  let waiting: Slot | undefined;
  api.acquire({ balancer: createBalancer('round-robin'), key: 'c2', client: 'c2', lane: 'page', priority: 0 }, (_failure, slot) => (waiting = slot));
  assert.equal(api.queueDepth, 1);

  const retired = new RetiredWorkers();
  const next = config({ pools: { web: { targets: ['10.0.0.1:80'], concurrency: 3, queue: { max: 7 } }, extra: { targets: ['10.0.0.5:80'] } } });
  const change = reconcilePools(pools, next, retired);
  assert.deepEqual([...pools.keys()], ['web', 'extra']);
  assert.deepEqual(change.newPools.map((pool) => pool.name), ['extra']);
  const web = pools.get('web')!;
  assert.equal(web.config.queue.max, 7);
  assert.deepEqual([web.upstreams[0].concurrency, web.upstreams[0].agent.maxSockets], [3, 3]);

  assert.deepEqual(retired.names(), ['api-0']);
  first.release();
  assert.ok(waiting, 'the removed pool still hands its worker to the request waiting in it');
  assert.deepEqual(retired.closeFinished(), []);
  waiting.release();
  assert.deepEqual(retired.closeFinished().map((upstream) => upstream.name), ['api-0']);
});
