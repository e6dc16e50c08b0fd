import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { validateConfig } from '../../lib/config.ts';
import { DrainCoordinator, FleetActionError, type DrainPorts } from '../../supervisor/drain-coordinator.ts';
import { EventLog } from '../../supervisor/event-log.ts';
import { Fleet } from '../../supervisor/fleet.ts';

// The fleet model and the drain coordinator as a config reload changes them: pools' settings in
// force at once, workers added at the end, workers retired (drained for good, then forgotten).

function setup(instances = 3) {
  const config = validateConfig(
    { pools: { web: { instances, portBase: 19100, maxUnavailable: 1, recycle: { maxRequests: 1000, jitter: 0.5 } } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } },
    '(test)',
  );
  const fleet = new Fleet(config, () => 0.5);
  let pid = 100;
  for (const worker of fleet.all()) {
    worker.newProcess(pid++);
    fleet.setState(worker, 'ready');
  }
  const inflight = new Map<string, number>();
  const ports: DrainPorts = {
    inflight: async (worker) => inflight.get(worker.name) ?? 0,
    restart: async () => {},
    waitHealthy: async () => true,
    recycled: () => {},
  };
  const events = new EventLog(pino({ level: 'silent' }));
  const coordinator = new DrainCoordinator(fleet, ports, events, { pollMs: 1, restartTimeoutMs: 1000 });
  return { config, fleet, coordinator, events, inflight };
}

test('a reloaded recycle policy holds for the running processes at once, at their place in the jitter', () => {
  const { config, fleet } = setup();
  const pool = fleet.pools.get('web')!;
  assert.deepEqual(fleet.all().map((worker) => worker.limits.maxRequests), [750, 750, 750]);
  fleet.setPoolConfig(pool, { ...config.pools.web, recycle: { ...config.pools.web.recycle, maxRequests: 40 }, drainTimeoutSec: 5 });
  assert.deepEqual(fleet.all().map((worker) => worker.limits.maxRequests), [30, 30, 30]);
  assert.equal(fleet.snapshot()[0].drainTimeoutSec, 5);
});

test('added workers take the next indices and ports and are down until their health checks pass', () => {
  const { fleet } = setup(2);
  let changes = 0;
  fleet.on('membership', () => changes++);
  const added = fleet.addWorkers(fleet.pools.get('web')!, 2);
  assert.deepEqual(
    added.map((worker) => [worker.name, worker.port, worker.state]),
    [
      ['web-2', 19102, 'down'],
      ['web-3', 19103, 'down'],
    ],
  );
  assert.equal(fleet.get('web-3'), added[1]);
  assert.equal(changes, 1);
  const pool = fleet.addPool('api', { ...fleet.pools.get('web')!.config, instances: 1, portBase: 19400 });
  assert.deepEqual(pool.workers.map((worker) => [worker.name, worker.port]), [['api-0', 19400]]);
  assert.deepEqual([...fleet.pools.keys()], ['web', 'api']);
});

test('a retired worker is draining at once, refuses every action, drains, and is never put back', async () => {
  const { fleet, coordinator, events, inflight } = setup();
  inflight.set('web-2', 1);
  const retired = coordinator.retire('web-2');
  const worker = fleet.get('web-2')!;
  assert.equal(worker.state, 'draining', 'marked at once, before anything is awaited');
  assert.equal(worker.retiring, true);
  for (const action of [() => coordinator.drain('web-2'), () => coordinator.undrain('web-2'), () => coordinator.requestRecycle('web-2', 'manual')]) {
    await assert.rejects(async () => action(), (error: unknown) => error instanceof FleetActionError && error.status === 409);
  }
  assert.deepEqual(coordinator.roll('web'), ['web-0', 'web-1'], 'a roll leaves it out');
  inflight.set('web-2', 0);
  const outcome = await retired;
  assert.equal(outcome.drained, true);
  assert.equal(worker.state, 'draining');
  const drains = (await events.since(undefined)).events.filter((event) => event.kind === 'drain' && event.worker === 'web-2');
  assert.deepEqual(drains.map((event) => event.reason), ['reload']);
});

test('a retiring worker counts neither as in nor out: the rest of the pool can still be drained', async () => {
  const { fleet, coordinator } = setup();
  void coordinator.retire('web-2');
  assert.equal(await coordinator.drain('web-1'), true, 'with maxUnavailable 1, web-2 being out would otherwise forbid it');
  await assert.rejects(() => coordinator.drain('web-0'), (error: unknown) => error instanceof FleetActionError && error.status === 409, 'but never the last ready one');
  assert.equal(fleet.get('web-1')!.state, 'draining');
});

test('a removed worker is forgotten; a pool without workers goes with its last one', () => {
  const { fleet } = setup(2);
  fleet.removeWorker(fleet.get('web-1')!);
  assert.deepEqual(fleet.all().map((worker) => worker.name), ['web-0']);
  assert.deepEqual(fleet.pools.get('web')!.workers.map((worker) => worker.name), ['web-0']);
  fleet.removeWorker(fleet.get('web-0')!);
  assert.deepEqual([...fleet.pools.keys()], []);
  assert.equal(fleet.get('web-0'), undefined);
});
