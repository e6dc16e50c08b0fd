import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { validateConfig } from '../../lib/config.ts';
import { canTakeOut, DrainCoordinator, FleetActionError, type DrainPorts } from '../../supervisor/drain-coordinator.ts';
import { EventLog } from '../../supervisor/event-log.ts';
import { Fleet, type FleetWorker, type WorkerState } from '../../supervisor/fleet.ts';
import { CrashTracker } from '../../supervisor/crash-tracker.ts';

const ready = (name: string) => ({ name, state: 'ready' as WorkerState });
const out = (name: string, state: WorkerState = 'draining') => ({ name, state });

test('canTakeOut: never the last ready worker, never more than maxUnavailable out', () => {
  assert.equal(canTakeOut([ready('a'), ready('b')], 'a', 1), true);
  assert.equal(canTakeOut([ready('a')], 'a', 1), false, 'last ready worker');
  assert.equal(canTakeOut([ready('a'), out('b', 'down')], 'a', 5), false, 'last ready worker while another is down');
  assert.equal(canTakeOut([ready('a'), ready('b'), out('c')], 'a', 1), false, 'maxUnavailable 1 already used');
  assert.equal(canTakeOut([ready('a'), ready('b'), out('c')], 'a', 2), true);
  assert.equal(canTakeOut([ready('a'), out('b')], 'b', 2), false, 'only ready workers can be taken out');
});

test('the crash tracker tells a loop from a one-off crash', () => {
  const crashes = new CrashTracker(60_000, 3);
  assert.deepEqual(crashes.record('w', 0), { inWindow: 1, loop: false });
  assert.deepEqual(crashes.record('w', 1000), { inWindow: 2, loop: false });
  assert.deepEqual(crashes.record('w', 2000), { inWindow: 3, loop: true });
  assert.deepEqual(crashes.record('w', 100_000), { inWindow: 1, loop: false });
});

/**
 * A fleet of `instances` ready workers and ports that model the world's timing: in-flight drops
 * to zero after a while, a restart gives the worker a new pid. Records the most workers ever out.
 */
function harness(instances: number, maxUnavailable: number) {
  const config = validateConfig({ pools: { web: { instances, portBase: 19100, maxUnavailable } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } }, '(test)');
  const fleet = new Fleet(config, () => 0.5);
  let nextPid = 1000;
  for (const worker of fleet.all()) {
    worker.newProcess(nextPid++);
    fleet.setState(worker, 'ready');
  }
  let maxOut = 0;
  const restarts: string[] = [];
  fleet.on('state', () => {
    const notReady = fleet.all().filter((worker) => worker.state !== 'ready').length;
    maxOut = Math.max(maxOut, notReady);
  });
  const inflightLeft = new Map<string, number>();
  const ports: DrainPorts = {
    inflight: async (worker) => {
      const left = inflightLeft.get(worker.name) ?? 2;
      inflightLeft.set(worker.name, Math.max(0, left - 1));
      return left;
    },
    restart: async (worker) => {
      restarts.push(worker.name);
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
    waitHealthy: async (worker: FleetWorker) => {
      worker.newProcess(nextPid++);
      inflightLeft.delete(worker.name);
      return true;
    },
    recycled: () => {},
  };
  const events = new EventLog(pino({ level: 'silent' }));
  const coordinator = new DrainCoordinator(fleet, ports, events, { pollMs: 1, restartTimeoutMs: 1000 });
  const settled = async () => {
    while (coordinator.running > 0 || fleet.all().some((worker) => coordinator.pendingReason(worker.name))) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  };
  return { fleet, coordinator, events, restarts, settled, maxOut: () => maxOut };
}

test('rolling a pool restarts every worker, maxUnavailable at a time, and leaves all ready', async () => {
  for (const maxUnavailable of [1, 2]) {
    const { fleet, coordinator, restarts, settled, maxOut, events } = harness(4, maxUnavailable);
    assert.deepEqual(coordinator.roll('web'), ['web-0', 'web-1', 'web-2', 'web-3']);
    await settled();
    assert.deepEqual([...restarts].sort(), ['web-0', 'web-1', 'web-2', 'web-3']);
    assert.equal(maxOut(), maxUnavailable);
    assert.ok(fleet.all().every((worker) => worker.state === 'ready'));
    const recycles = (await events.since(undefined)).events.filter((event) => event.kind === 'recycle');
    assert.equal(recycles.length, 4);
    assert.ok(recycles.every((event) => event.reason === 'roll' && event.detail?.drainTimedOut === false));
  }
});

test('a recycle waits while its pool has no other ready worker, and runs once one is back', async () => {
  const { fleet, coordinator, restarts, settled } = harness(2, 1);
  fleet.setState(fleet.get('web-1')!, 'down');
  assert.equal(coordinator.requestRecycle('web-0', 'manual'), true);
  assert.equal(coordinator.requestRecycle('web-0', 'manual'), false, 'one pending recycle per worker');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(restarts, []);
  assert.equal(coordinator.pendingReason('web-0'), 'manual');
  fleet.setState(fleet.get('web-1')!, 'ready');
  await settled();
  assert.deepEqual(restarts, ['web-0']);
});

test('a policy recycle for a process that was replaced meanwhile is dropped', async () => {
  const { fleet, coordinator, restarts, settled } = harness(2, 1);
  fleet.setState(fleet.get('web-1')!, 'down');
  coordinator.requestRecycle('web-0', 'rss');
  fleet.get('web-0')!.newProcess(99_999); // it crashed and came back before its turn
  fleet.setState(fleet.get('web-1')!, 'ready');
  await settled();
  assert.deepEqual(restarts, []);
});

test('a manual drain refuses the last ready worker and can be undone', async () => {
  const { fleet, coordinator } = harness(2, 1);
  await coordinator.drain('web-0');
  assert.equal(fleet.get('web-0')!.state, 'draining');
  await assert.rejects(coordinator.drain('web-1'), (error: FleetActionError) => error.status === 409);
  await assert.rejects(coordinator.drain('web-9'), (error: FleetActionError) => error.status === 404);
  coordinator.undrain('web-0');
  assert.equal(fleet.get('web-0')!.state, 'ready');
});
