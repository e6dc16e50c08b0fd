import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { validateConfig, type SwitchyardConfig } from '../../../lib/config.ts';
import { HOSTS_KEY } from '../../../lib/host-report.ts';
import { PrivateRedis } from '../../helpers/private-redis.ts';
import { beat, hostView as siteHostView, type HostView } from '../../helpers/site-views.ts';

// Two hosts' site views over one real Redis (no PM2: the fleets' states are set by hand, as the
// health polls and drains would): the site-wide leases hold maxUnavailable and "never the last
// ready worker" across hosts, each host sees the other's workers, and a host that stops
// reporting is named as gone.

let redis: PrivateRedis;
before(async () => {
  redis = await PrivateRedis.create();
});
after(() => redis.remove());

function siteConfig(maxUnavailable: number): SwitchyardConfig {
  return validateConfig(
    {
      hosts: { a: { address: '127.0.0.1' }, b: { address: '127.0.0.2' } },
      pools: { web: { instances: 1, portBase: 9100, maxUnavailable }, clone: { instances: 1, portBase: 9200, hosts: ['b'] }, bot: { targets: ['127.0.0.1:1'] } },
    },
    '(site)',
  );
}

const hostView = (config: SwitchyardConfig, host: string, url = redis.url) => siteHostView(config, host, url);

/** Hosts a and b on an emptied Redis, each with its config; their views are closed after `body`. */
async function withHosts(configs: { a: SwitchyardConfig; b: SwitchyardConfig }, body: (hosts: { a: HostView; b: HostView; client: Redis }) => Promise<void>): Promise<void> {
  const client = new Redis(redis.url);
  await client.flushall();
  const a = hostView(configs.a, 'a');
  const b = hostView(configs.b, 'b');
  try {
    await body({ a, b, client });
  } finally {
    await Promise.all([a.view.close(), b.view.close()]);
    client.disconnect();
  }
}

test('maxUnavailable and the last ready worker hold across hosts', () =>
  withHosts({ a: siteConfig(1), b: siteConfig(1) }, async ({ a, b }) => {
    await beat(a.view, b.view);
    const webA = a.fleet.get('web-a-0')!;
    const webB = b.fleet.get('web-b-0')!;
    assert.equal(await a.view.takeOut(webA), undefined, 'one of two ready workers may go');
    a.fleet.setState(webA, 'draining');
    await beat(a.view, b.view);
    assert.match((await b.view.takeOut(webB))!, /last ready worker of its pool on the site/);
    // back in rotation: the other host may take its own out now, but then not the first again
    a.fleet.setState(webA, 'ready');
    await beat(a.view, b.view);
    assert.equal(await b.view.takeOut(webB), undefined);
    assert.match((await a.view.takeOut(webA))!, /last ready worker|are out/);
  }));

const twoWebWorkersEach = () =>
  validateConfig(
    {
      hosts: { a: { address: '127.0.0.1' }, b: { address: '127.0.0.2' } },
      pools: { web: { instances: 2, portBase: 9100, hosts: ['a', 'b'] }, clone: { instances: 1, portBase: 9200 }, bot: { targets: ['127.0.0.1:1'] } },
    },
    '(site)',
  );

test('with maxUnavailable 1 of 3, a down worker on another host blocks a recycle here', () =>
  withHosts({ a: twoWebWorkersEach(), b: twoWebWorkersEach() }, async ({ a, b }) => {
    b.fleet.setState(b.fleet.get('web-b-1')!, 'down');
    await beat(a.view, b.view);
    assert.match((await a.view.takeOut(a.fleet.get('web-a-0')!))!, /1 of the pool's 4 workers on the site are out \(maxUnavailable 1\)/);
    b.fleet.setState(b.fleet.get('web-b-1')!, 'ready');
    await beat(a.view, b.view);
    assert.equal(await a.view.takeOut(a.fleet.get('web-a-0')!), undefined);
  }));

test("each host sees the other's workers; one that stops reporting is gone, and its workers down", () =>
  withHosts({ a: siteConfig(1), b: siteConfig(1) }, async ({ a, b, client }) => {
    await beat(a.view, b.view);
    assert.deepEqual(
      a.view.hosts().map((host) => [host.name, host.up, host.workers]),
      [['a', true, 1], ['b', true, 2]],
    );
    assert.deepEqual(a.view.remoteWorkers().map((worker) => `${worker.name}@${worker.host} ${worker.state}`).sort(), ['clone-b-0@b ready', 'web-b-0@b ready']);
    assert.deepEqual(a.view.ownerOf('clone-b-0'), { host: 'b', supervisor: 'http://127.0.0.2:8090', up: true });
    // a forged report (not signed with the fleet key) is ignored
    await client.hset(HOSTS_KEY, 'b', JSON.stringify({ payload: '{}', sig: 'AAAA' }));
    await beat(a.view);
    assert.equal(a.view.remoteWorkers().length, 2, 'the last good report stands');
    // host b stops reporting: once its last report is older than HOST_GONE_MS it is gone
    await b.view.close();
    const gone = Date.now() + 11_000;
    assert.deepEqual(a.view.hosts(gone).map((host) => [host.name, host.up]), [['a', true], ['b', false]]);
    assert.ok(a.view.remoteWorkers(gone).every((worker) => worker.state === 'down' && !worker.hostUp));
  }));

test('with Redis down no worker may leave rotation, and nothing hangs', async () => {
  const config = siteConfig(1);
  const a = hostView(config, 'a', 'redis://127.0.0.1:1');
  try {
    const started = Date.now();
    assert.match((await a.view.takeOut(a.fleet.get('web-a-0')!))!, /Redis is unreachable/);
    assert.ok(Date.now() - started < 5000);
  } finally {
    await a.view.close();
  }
});

test('a host whose config lays the site out otherwise is named: its leases would not be counted alike', () =>
  // b: a reload applied on b alone
  withHosts({ a: siteConfig(1), b: siteConfig(2) }, async ({ a, b }) => {
    await beat(a.view, b.view);
    assert.deepEqual(a.view.hosts().map((host) => [host.name, host.sameLayout]), [['a', true], ['b', false]]);
    const same = hostView(siteConfig(1), 'b');
    try {
      await beat(a.view, same.view);
      assert.equal(a.view.hosts().find((host) => host.name === 'b')?.sameLayout, true);
    } finally {
      await same.view.close();
    }
  }));
