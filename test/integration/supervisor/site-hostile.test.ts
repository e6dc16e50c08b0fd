import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { Redis } from 'ioredis';
import { validateConfig, type SwitchyardConfig } from '../../../lib/config.ts';
import { fleetKey, signHostReport } from '../../../lib/fleet-signing.ts';
import { HOSTS_KEY } from '../../../lib/host-report.ts';
import { forwardPoolAction, forwardWorkerAction } from '../../../supervisor/site-forward.ts';
import { PrivateRedis } from '../../helpers/private-redis.ts';
import { beat, hostView, SITE_TEST_TOKEN as TOKEN, type HostView } from '../../helpers/site-views.ts';

// The site view against what anyone who can write to Redis (but holds no admin token) can do to
// the unsigned lease sets and the hosts hash, against Redis losing its data mid-drain, clocks
// that disagree and operators' mistakes: at worst drains are refused; never may the last ready
// worker, or more than maxUnavailable, leave rotation.

let redis: PrivateRedis;
before(async () => {
  redis = await PrivateRedis.create();
});
after(() => redis.remove());

function siteConfig(maxUnavailable: number, instances = 1): SwitchyardConfig {
  return validateConfig(
    {
      hosts: { a: { address: '127.0.0.1' }, b: { address: '127.0.0.2' } },
      pools: { web: { instances, portBase: 9100, maxUnavailable }, clone: { instances: 1, portBase: 9200 }, bot: { targets: ['127.0.0.1:1'] } },
    },
    '(site)',
  );
}

/** `body` with these hosts' views on a flushed Redis, and a plain client of it (the attacker's). */
async function onSite(config: SwitchyardConfig, hosts: string[], body: (views: Record<string, HostView>, client: Redis) => Promise<void>): Promise<void> {
  const client = new Redis(redis.url);
  await client.flushall();
  const views = Object.fromEntries(hosts.map((host) => [host, hostView(config, host, redis.url)]));
  try {
    await body(views, client);
  } finally {
    await Promise.all(Object.values(views).map(({ view }) => view.close()));
    client.disconnect();
  }
}

const hostReport = (host: string, at: number) =>
  signHostReport(fleetKey(TOKEN), { host, supervisor: 'http://127.0.0.2:8090', startedAt: new Date(at).toISOString(), at, workers: [], recycles: [] });

test('junk members in the ready set do not make the last ready worker sparable', async () => {
  await onSite(siteConfig(1), ['a', 'b'], async ({ a, b }, client) => {
    b.fleet.setState(b.fleet.get('web-b-0')!, 'down');
    await beat(a.view, b.view);
    await client.zadd('switchyard:site:ready:web', Date.now() + 3600_000, 'junk-0', Date.now() + 3600_000, 'junk-1');
    assert.match((await a.view.takeOut(a.fleet.get('web-a-0')!))!, /last ready worker|are out/);
  });
});

test("a gone host's worker forged ready for an hour in the ready set does not count as ready", async () => {
  await onSite(siteConfig(1), ['a'], async ({ a }, client) => {
    await beat(a.view); // host b never reports: its worker is neither ready nor out
    await client.zadd('switchyard:site:ready:web', Date.now() + 3600_000, 'web-b-0');
    assert.match((await a.view.takeOut(a.fleet.get('web-a-0')!))!, /last ready worker|are out/);
  });
});

test('Redis flushed mid-drain: until every host has reported again, no other worker may leave', async () => {
  await onSite(siteConfig(1, 2), ['a', 'b'], async ({ a, b }, client) => {
    await beat(a.view, b.view);
    const webA = a.fleet.get('web-a-0')!;
    assert.equal(await a.view.takeOut(webA), undefined);
    a.fleet.setState(webA, 'draining');
    await client.flushall(); // leases and ready entries gone; only host b reports again first
    await beat(b.view);
    assert.match((await b.view.takeOut(b.fleet.get('web-b-0')!))!, /2 of the pool's 4 workers on the site are out/);
    await beat(a.view, b.view); // host a's report puts its lease back
    assert.match((await b.view.takeOut(b.fleet.get('web-b-0')!))!, /1 of the pool's 4 workers on the site are out/);
  });
});

test("a worker another host's signed report has out does not pass as ready through a forged ready entry", async () => {
  await onSite(siteConfig(1), ['a', 'b'], async ({ a, b }, client) => {
    await beat(a.view, b.view);
    const webB = b.fleet.get('web-b-0')!;
    assert.equal(await b.view.takeOut(webB), undefined);
    b.fleet.setState(webB, 'draining');
    await beat(a.view, b.view);
    // the attacker moves the draining worker back to "ready" just before host a asks
    await client.zrem('switchyard:site:out:web', 'web-b-0');
    await client.zadd('switchyard:site:ready:web', Date.now() + 5000, 'web-b-0');
    assert.match((await a.view.takeOut(a.fleet.get('web-a-0')!))!, /last ready worker|are out/);
  });
});

test('a host whose clock runs 15 s behind is up while it reports, and gone once it stops', async () => {
  await onSite(siteConfig(1), ['a'], async ({ a }, client) => {
    const skew = -15_000;
    await client.hset(HOSTS_KEY, 'b', hostReport('b', Date.now() + skew));
    await beat(a.view);
    await client.hset(HOSTS_KEY, 'b', hostReport('b', Date.now() + skew)); // its next report, on its own clock
    await beat(a.view);
    assert.deepEqual(a.view.hosts().map((host) => [host.name, host.up]), [['a', true], ['b', true]]);
    assert.deepEqual(a.view.hosts(Date.now() + 11_000).map((host) => [host.name, host.up]), [['a', true], ['b', false]]);
  });
});

test('a heartbeat between a granted lease and the drain it was for does not give the lease back', async () => {
  await onSite(siteConfig(1), ['a', 'b'], async ({ a, b }) => {
    await beat(a.view, b.view);
    const webA = a.fleet.get('web-a-0')!;
    assert.equal(await a.view.takeOut(webA), undefined);
    await beat(a.view); // host a reports before its drain marks the worker draining
    assert.match((await b.view.takeOut(b.fleet.get('web-b-0')!))!, /last ready worker|are out/);
    a.fleet.setState(webA, 'draining');
  });
});

test('a lease granted but not used is given back', async () => {
  await onSite(siteConfig(1), ['a', 'b'], async ({ a, b }) => {
    await beat(a.view, b.view);
    assert.equal(await a.view.takeOut(a.fleet.get('web-a-0')!), undefined);
    await new Promise((resolve) => setTimeout(resolve, 2100)); // no drain followed
    await beat(a.view, b.view);
    assert.equal(await b.view.takeOut(b.fleet.get('web-b-0')!), undefined);
  });
});

test("a dead host's old reports replayed in order do not make it up again", async () => {
  await onSite(siteConfig(1), ['a'], async ({ a }, client) => {
    const recorded = Date.now() - 3600_000;
    for (const at of [recorded, recorded + 2000, recorded + 4000]) {
      await client.hset(HOSTS_KEY, 'b', hostReport('b', at));
      await beat(a.view);
    }
    assert.deepEqual(a.view.hosts().map((host) => [host.name, host.up]), [['a', true], ['b', false]]);
  });
});

test('a hosts hash stuffed with junk fields and a huge value is not read every heartbeat', async () => {
  await onSite(siteConfig(1), ['a'], async ({ a }, client) => {
    const bytesOut = async () => Number(/total_net_output_bytes:(\d+)/.exec(await client.info('stats'))![1]);
    const huge = 'x'.repeat(8 * 1024 * 1024);
    await client.hset(HOSTS_KEY, 'b', huge, 'junk-host', huge);
    for (let i = 0; i < 10; i++) await client.hset(HOSTS_KEY, Object.fromEntries(Array.from({ length: 1000 }, (_, j) => [`junk-${i}-${j}`, 'y'.repeat(100)])));
    const before = await bytesOut();
    await beat(a.view);
    assert.ok((await bytesOut()) - before < 256 * 1024, 'a heartbeat reads only the hosts of the config, and no oversized report');
    assert.deepEqual(a.view.hosts().map((host) => [host.name, host.up]), [['a', true], ['b', false]]);
  });
});

test('two supervisors that both run as host a (SWITCHYARD_HOST set twice) say so', async () => {
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const config = siteConfig(1);
  const views = ['http://127.0.0.1:8090', 'http://127.0.0.3:8090'].map((supervisorUrl) => hostView(config, 'a', redis.url, { supervisorUrl, log }).view);
  try {
    for (let round = 0; round < 3; round++) {
      views[0].soon();
      await new Promise((resolve) => setTimeout(resolve, 50));
      views[1].soon();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(lines.some((line) => /another supervisor reports as this host/.test(line)), lines.join(''));
  } finally {
    await Promise.all(views.map((view) => view.close()));
  }
});

test('a ready worker found in the out set is not waved through as already out', async () => {
  await onSite(siteConfig(1), ['a', 'b'], async ({ a, b }, client) => {
    await beat(a.view, b.view);
    assert.equal(await b.view.takeOut(b.fleet.get('web-b-0')!), undefined); // host b's drain is about to start
    // a heartbeat of a refused ask (or anyone who can write to Redis) left host a's worker in the out set
    await client.zadd('switchyard:site:out:web', Date.now() + 10_000, 'web-a-0');
    assert.match((await a.view.takeOut(a.fleet.get('web-a-0')!))!, /last ready worker|are out|not ready/);
  });
});

test('a roll names a host of the pool that is gone, rather than skip its workers silently', async () => {
  await onSite(siteConfig(1), ['a'], async ({ a }) => {
    await beat(a.view); // host b never reports
    const parts = await forwardPoolAction(a.view, 'web', '/api/pools/web/roll', TOKEN);
    assert.deepEqual(parts.map((part) => [part.host, part.status]), [['b', 503]]);
    assert.match(parts[0].error!, /host b .*gone/);
    assert.deepEqual(await forwardPoolAction(a.view, 'nosuchpool', '/api/pools/nosuchpool/roll', TOKEN), []);
  });
});

test("an action for a worker of a host that never reported names that host, rather than 404", async () => {
  await onSite(siteConfig(1), ['a'], async ({ a }) => {
    await beat(a.view);
    const answer = await forwardWorkerAction(a.view, 'web-b-0', '/api/workers/web-b-0/drain', TOKEN);
    assert.equal(answer?.status, 503);
    assert.match(String(answer?.body.error), /web-b-0 runs on host b, which is gone/);
    assert.equal(await forwardWorkerAction(a.view, 'web-z-0', '/api/workers/web-z-0/drain', TOKEN), undefined);
  });
});
