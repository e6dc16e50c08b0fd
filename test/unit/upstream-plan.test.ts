import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, type PoolConfig } from '../../lib/config.ts';
import { poolAddresses, type PlacedWorker } from '../../lib/site.ts';
import { planUpstreams } from '../../proxy/upstream-plan.ts';

const pool = (raw: Record<string, unknown>): PoolConfig => validateConfig({ pools: { web: raw }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } }, 'test.yaml').pools.web;
const worker = (index: number, address: string): PlacedWorker & { id: string } => {
  const [host, port] = address.split(':');
  return { index, host, port: Number(port), id: `old ${index}` };
};
/** The plan as short strings: `keep old N` or `add N host:port`. */
function describe(plan: ReturnType<typeof planUpstreams<PlacedWorker & { id: string }>>) {
  return {
    workers: plan.workers.map((entry) => ('keep' in entry ? `keep ${entry.keep.id}` : `add ${entry.add.index} ${entry.add.host}:${entry.add.port}`)),
    removed: plan.removed.map((removed) => removed.id),
  };
}

test('poolAddresses: supervised instances on portBase+i; targets as given, IPv6 without brackets', () => {
  assert.deepEqual(poolAddresses(pool({ instances: 2, portBase: 9100 })), [
    { index: 0, host: '127.0.0.1', port: 9100 },
    { index: 1, host: '127.0.0.1', port: 9101 },
  ]);
  assert.deepEqual(poolAddresses(pool({ targets: ['10.0.0.1:80', '[::1]:8080'] })), [
    { index: 0, host: '10.0.0.1', port: 80 },
    { index: 1, host: '::1', port: 8080 },
  ]);
});

test('supervised: more instances keep the existing ones and add the next', () => {
  const existing = [worker(0, '127.0.0.1:9100'), worker(1, '127.0.0.1:9101')];
  assert.deepEqual(describe(planUpstreams(existing, pool({ instances: 3, portBase: 9100 }))), {
    workers: ['keep old 0', 'keep old 1', 'add 2 127.0.0.1:9102'],
    removed: [],
  });
});

test('supervised: fewer instances remove the last', () => {
  const existing = [worker(0, '127.0.0.1:9100'), worker(1, '127.0.0.1:9101'), worker(2, '127.0.0.1:9102')];
  assert.deepEqual(describe(planUpstreams(existing, pool({ instances: 1, portBase: 9100 }))), { workers: ['keep old 0'], removed: ['old 1', 'old 2'] });
});

test('supervised: a moved portBase keeps no worker whose name now names another port', () => {
  const existing = [worker(0, '127.0.0.1:9100'), worker(1, '127.0.0.1:9101')];
  // 9101 is still wanted, but as web-0: the supervisor's web-1 is no longer that process
  assert.deepEqual(describe(planUpstreams(existing, pool({ instances: 2, portBase: 9101 }))), {
    workers: ['add 0 127.0.0.1:9101', 'add 1 127.0.0.1:9102'],
    removed: ['old 0', 'old 1'],
  });
});

test('targets: kept by address under their names; new ones take free indexes', () => {
  const existing = [worker(0, '10.0.0.1:80'), worker(1, '10.0.0.2:80'), worker(2, '10.0.0.3:80')];
  assert.deepEqual(describe(planUpstreams(existing, pool({ targets: ['10.0.0.2:80', '10.0.0.4:80', '10.0.0.3:80', '10.0.0.5:80'] }))), {
    workers: ['keep old 1', 'add 0 10.0.0.4:80', 'keep old 2', 'add 3 10.0.0.5:80'],
    removed: ['old 0'],
  });
});

test('targets: a listed address twice keeps one worker and adds another', () => {
  const existing = [worker(0, '10.0.0.1:80')];
  assert.deepEqual(describe(planUpstreams(existing, pool({ targets: ['10.0.0.1:80', '10.0.0.1:80'] }))), {
    workers: ['keep old 0', 'add 1 10.0.0.1:80'],
    removed: [],
  });
});

test('a supervised pool turned into targets keeps the workers whose address is listed', () => {
  const existing = [worker(0, '127.0.0.1:9100'), worker(1, '127.0.0.1:9101')];
  assert.deepEqual(describe(planUpstreams(existing, pool({ targets: ['127.0.0.1:9101'] }))), { workers: ['keep old 1'], removed: ['old 0'] });
});
