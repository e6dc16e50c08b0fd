import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffConfig, notLiveReason, summarizeChanges } from '../../lib/config-diff.ts';
import { validateConfig, type SwitchyardConfig } from '../../lib/config.ts';

const config = (raw: Record<string, unknown> = {}): SwitchyardConfig => validateConfig(structuredClone(raw), 'test.yaml');

test('the same config twice has no changes', () => {
  assert.deepEqual(diffConfig(config(), config()), []);
});

const POOLS = { web: { portBase: 9100 }, clone: { portBase: 9200 }, bot: { portBase: 9300 } };

test('a scalar change names its full key, both values, and is live', () => {
  const before = config({ pools: POOLS });
  const after = config({ proxy: { limits: { maxBodyBytes: 1000 } }, pools: { ...POOLS, web: { portBase: 9100, instances: 3 } } });
  assert.deepEqual(diffConfig(before, after), [
    { key: 'proxy.limits.maxBodyBytes', from: 1024 * 1024 * 1024, to: 1000, live: true },
    { key: 'pools.web.instances', from: 2, to: 3, live: true },
  ]);
});

test('pools added and removed are one change each, summarised as such', () => {
  const before = config({ pools: POOLS });
  const after = config({ pools: { ...POOLS, api: { targets: ['127.0.0.1:7000'] } } });
  const changes = diffConfig(before, after);
  assert.deepEqual(changes.map((change) => change.key), ['pools.api']);
  assert.deepEqual(summarizeChanges(changes), ['pools.api added']);
  assert.deepEqual(summarizeChanges(diffConfig(after, before)), ['pools.api removed']);
});

test('listen addresses, spool dirs, the data dir and worker settings are not live, each with a reason', () => {
  const before = config();
  const after = config({
    data: '/tmp/elsewhere',
    proxy: { port: 8181, host: '127.0.0.1', control: { port: 8182 } },
    supervisor: { port: 8191 },
    worker: { cacheBytes: 1 },
  });
  const changes = diffConfig(before, after);
  const notLive = changes.filter((change) => !change.live).map((change) => change.key);
  assert.deepEqual(notLive.sort(), [
    'data',
    'proxy.accessLog.path', // follows the data dir
    'proxy.bodies.spoolDir', // follows the data dir
    'proxy.cloneSharing.dir', // follows the data dir
    'proxy.control.port',
    'proxy.host',
    'proxy.port',
    'proxy.streaming.spoolDir',
    'supervisor.port',
    'worker.cacheBytes',
  ]);
  assert.deepEqual(changes.filter((change) => change.live), []);
  for (const change of changes) assert.match(change.reason ?? '', /restart|roll/);
});

test('notLiveReason: a pattern covers its key and what is under it, no more', () => {
  assert.match(notLiveReason('proxy.port') ?? '', /restart the proxy/);
  assert.match(notLiveReason('worker.keepAliveTimeoutMs') ?? '', /roll/);
  assert.equal(notLiveReason('proxy.proxyProtocol'), undefined);
  assert.equal(notLiveReason('proxy.cloneSharing.ttlSec'), undefined);
  assert.equal(notLiveReason('proxy.portal'), undefined);
  assert.equal(notLiveReason('pools.web.instances'), undefined);
  assert.equal(notLiveReason('proxy'), undefined);
});

test('summaries: scalars, unset values, lists of scalars, rules, and not-live changes', () => {
  const before = config({ proxy: { trustedProxies: ['127.0.0.1/32', '::1/128'] }, pools: POOLS });
  const after = config({
    proxy: { trustedProxies: ['127.0.0.1/32', '10.0.0.0/8'], debugHeaders: true, port: 9999 },
    pools: { ...POOLS, web: { portBase: 9100, perClient: { maxInFlight: 2 } } },
    classify: [{ class: 'bot', any: [{ userAgent: 'robot' }] }],
  });
  const lines = summarizeChanges(diffConfig(before, after));
  assert.ok(lines.includes('proxy.trustedProxies: +"10.0.0.0/8", -"::1/128"'), lines.join('\n'));
  assert.ok(lines.includes('proxy.debugHeaders false -> true'), lines.join('\n'));
  assert.ok(lines.includes('pools.web.perClient.maxInFlight unset -> 2'), lines.join('\n'));
  assert.ok(lines.includes('classify rules changed (3 -> 1 rules)'), lines.join('\n'));
  assert.ok(lines.some((line) => line.startsWith('proxy.port 8080 -> 9999 (not applied: ')), lines.join('\n'));
});

test('long lists are cut after five edits; a reordered list says so', () => {
  const agents = (names: string[]) => config({ bots: { userAgents: names } });
  const [line] = summarizeChanges(diffConfig(agents(['a']), agents(['a', 'b', 'c', 'd', 'e', 'f', 'g'])));
  assert.equal(line, 'bots.userAgents: +"b", +"c", +"d", +"e", +"f" and 1 more');
  assert.deepEqual(summarizeChanges(diffConfig(agents(['a', 'b']), agents(['b', 'a']))), ['bots.userAgents: reordered']);
});

test('bot tokens are never printed', () => {
  const before = config({ bots: { tokens: ['old-secret-token'] } });
  const after = config({ bots: { tokens: ['new-secret-token', 'another-secret'] } });
  const changes = diffConfig(before, after);
  assert.equal(changes.length, 1);
  const lines = summarizeChanges(changes);
  assert.deepEqual(lines, ['bots.tokens changed']);
  assert.ok(!lines.join('').includes('secret'));
});

test('long values are shortened', () => {
  const long = 'x'.repeat(200);
  const [line] = summarizeChanges(diffConfig(config({ proxy: { static: { root: '/srv' } } }), config({ proxy: { static: { root: `/${long}` } } })));
  assert.equal(line, `proxy.static.root "/srv" -> "/${'x'.repeat(55)}...`);
});

test('what a supervised pool was started with is not live while it stays supervised; for static targets it is', () => {
  const before = config({ pools: { ...POOLS, api: { targets: ['10.0.0.1:80'] } } });
  const after = config({
    pools: { ...POOLS, web: { portBase: 9500, concurrency: 2, host: '127.0.0.2', instances: 3 }, api: { targets: ['10.0.0.1:80'], concurrency: 4 } },
  });
  const byKey = Object.fromEntries(diffConfig(before, after).map((change) => [change.key, change.live]));
  assert.deepEqual(byKey, {
    'pools.web.instances': true,
    'pools.web.portBase': false,
    'pools.web.host': false,
    'pools.web.concurrency': false,
    'pools.api.concurrency': true,
  });
  const turned = diffConfig(before, config({ pools: { ...POOLS, api: { portBase: 7000 } } }));
  assert.ok(turned.every((change) => change.live), 'a pool that becomes supervised starts its workers afresh');
});
