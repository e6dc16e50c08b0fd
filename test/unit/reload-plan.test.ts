import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, type SwitchyardConfig } from '../../lib/config.ts';
import { planSupervisorReload } from '../../supervisor/reload-plan.ts';

const POOLS = { web: { instances: 2, portBase: 9100 }, clone: { instances: 2, portBase: 9200 }, bot: { instances: 1, portBase: 9300 } };
const config = (raw: Record<string, unknown> = {}): SwitchyardConfig => validateConfig(structuredClone({ pools: POOLS, ...raw }), 'test.yaml');
const withPools = (pools: Record<string, unknown>) => config({ pools: { ...POOLS, ...pools } });

test('the same config: nothing to do', () => {
  const plan = planSupervisorReload(config(), config());
  assert.deepEqual([plan.changes, plan.notApplied, plan.resizes], [[], [], []]);
  assert.deepEqual(plan.config, config());
});

test('recycle policy, drain settings and history retention are the supervisor\'s changes, applied', () => {
  const after = config({
    pools: { ...POOLS, web: { ...POOLS.web, recycle: { maxRequests: 5 }, drainTimeoutSec: 7, maxUnavailable: 2 } },
    supervisor: { historyDays: 3 },
  });
  const plan = planSupervisorReload(config(), after);
  assert.deepEqual(plan.changes, [
    'pools.web.recycle.maxRequests 0 -> 5',
    'pools.web.drainTimeoutSec 60 -> 7',
    'pools.web.maxUnavailable 1 -> 2',
    'supervisor.historyDays 14 -> 3',
  ]);
  assert.deepEqual(plan.notApplied, []);
  assert.deepEqual(plan.config, after);
  assert.deepEqual(plan.resizes, []);
});

test('what only the proxies act on is neither listed nor refused, but is in force', () => {
  const after = config({ pools: { ...POOLS, web: { ...POOLS.web, queue: { max: 7 } } }, proxy: { limits: { maxBodyBytes: 1000 } }, lanes: { bot: { pool: 'web' } } });
  const plan = planSupervisorReload(config(), after);
  assert.deepEqual([plan.changes, plan.notApplied], [[], []]);
  assert.equal(plan.config.pools.web.queue.max, 7);
  assert.equal(plan.config.lanes.bot.pool, 'web');
});

test('instances: pools grow and shrink; a new supervised pool starts, a removed one goes, static targets start nothing', () => {
  const after = config({
    pools: {
      web: { instances: 3, portBase: 9100 },
      clone: { instances: 1, portBase: 9200 },
      api: { instances: 2, portBase: 9400 },
      feed: { targets: ['127.0.0.1:7000'] },
    },
    lanes: { bot: { pool: 'web' } },
  });
  const plan = planSupervisorReload(config(), after);
  assert.deepEqual(plan.resizes, [
    { pool: 'web', from: 2, to: 3 },
    { pool: 'clone', from: 2, to: 1 },
    { pool: 'api', from: 0, to: 2 },
    { pool: 'bot', from: 1, to: 0 },
  ]);
  assert.deepEqual(plan.changes, ['pools.web.instances 2 -> 3', 'pools.clone.instances 2 -> 1', 'pools.bot removed', 'pools.api added']);
});

test('a pool that turns into static targets stops its workers; one that stops being static starts them', () => {
  const toTargets = planSupervisorReload(config(), withPools({ clone: { targets: ['127.0.0.1:7000'] } }));
  assert.deepEqual(toTargets.resizes, [{ pool: 'clone', from: 2, to: 0 }]);
  assert.deepEqual(toTargets.changes, ['pools.clone.targets unset -> 127.0.0.1:7000']);
  const fromTargets = planSupervisorReload(withPools({ clone: { targets: ['127.0.0.1:7000'] } }), withPools({ clone: { instances: 3, portBase: 9500 } }));
  assert.deepEqual(fromTargets.resizes, [{ pool: 'clone', from: 0, to: 3 }]);
  assert.equal(fromTargets.config.pools.clone.portBase, 9500, 'nothing runs there yet: its new ports hold');
});

test('a static pool\'s targets are the proxies\' alone', () => {
  const before = withPools({ feed: { targets: ['127.0.0.1:7000'] } });
  const plan = planSupervisorReload(before, withPools({ feed: { targets: ['127.0.0.1:7001'] } }));
  assert.deepEqual([plan.changes, plan.notApplied, plan.resizes], [[], [], []]);
  assert.deepEqual(plan.config.pools.feed.targets, ['127.0.0.1:7001']);
});

test('what running workers were started with, and what no process takes live, is reported and kept as it was', () => {
  const after = config({
    data: '/tmp/elsewhere',
    supervisor: { port: 8191, historyDays: 2 },
    proxy: { port: 8181 },
    worker: { cacheBytes: 1 },
    pools: { ...POOLS, web: { instances: 3, portBase: 9150, concurrency: 2 } },
  });
  const before = config();
  const plan = planSupervisorReload(before, after);
  assert.deepEqual(plan.changes, ['pools.web.instances 2 -> 3', 'supervisor.historyDays 14 -> 2']);
  assert.deepEqual(
    plan.notApplied.map((line) => line.replace(/ \(not applied: .*\)$/, '')),
    [`data ${JSON.stringify(before.data)} -> "/tmp/elsewhere"`, 'pools.web.portBase 9100 -> 9150', 'pools.web.concurrency 1 -> 2', 'worker.cacheBytes 33554432 -> 1', 'supervisor.port 8090 -> 8191'],
    'the proxy reports its own (proxy.port, its spool dirs)',
  );
  for (const line of plan.notApplied) assert.match(line, /\(not applied: .*(restart|roll).*\)$/);
  // Not half-applied: what could not change is as it was; the rest is new.
  assert.equal(plan.config.data, before.data);
  assert.equal(plan.config.proxy.bodies.spoolDir, before.proxy.bodies.spoolDir);
  assert.equal(plan.config.proxy.port, before.proxy.port);
  assert.equal(plan.config.supervisor.port, before.supervisor.port);
  assert.equal(plan.config.worker.cacheBytes, before.worker.cacheBytes);
  assert.deepEqual([plan.config.pools.web.portBase, plan.config.pools.web.concurrency, plan.config.pools.web.instances], [9100, 1, 3]);
  assert.equal(plan.config.supervisor.historyDays, 2);
  assert.deepEqual(plan.resizes, [{ pool: 'web', from: 2, to: 3 }], 'the new worker goes on the old ports, next to its siblings');
});
