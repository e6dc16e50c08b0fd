import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { ConfigError, validateConfig } from '../../lib/config.ts';
import { pm2Apps } from '../../lib/ecosystem.ts';
import { poolAddresses, siteOf } from '../../lib/site.ts';
import { HealthChecker } from '../../proxy/health-check.ts';
import { buildPools } from '../../proxy/pool-set.ts';
import { Fleet } from '../../supervisor/fleet.ts';

// A site of several hosts in one config: who runs what, under which names, reached where.

const scripts = { proxy: '/dist/proxy.mjs', 'proxy-master': '/dist/proxy-master.mjs', supervisor: '/dist/supervisor.mjs', worker: '/dist/worker.mjs' };
const siteConfig = (pools: Record<string, unknown> = {}) =>
  validateConfig(
    {
      hosts: { a: { address: '10.9.0.1' }, b: { address: '10.9.0.2' } },
      pools: { web: { instances: 2, portBase: 9100 }, clone: { instances: 1, portBase: 9200, hosts: ['b'] }, bot: { targets: ['10.9.0.9:80'] }, ...pools },
    },
    '(site)',
  );
const problemsOf = (raw: Record<string, unknown>, env: Record<string, string> = {}) => {
  try {
    validateConfig(raw, 'site.yaml', env);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
};

test('every proxy places every host\'s workers by name, so the names (and the IP-hash ring) agree everywhere', () => {
  const config = siteConfig();
  assert.deepEqual(
    poolAddresses(config.pools.web, config).map((place) => `${place.siteHost}/${place.index} ${place.host}:${place.port}`),
    ['a/0 10.9.0.1:9100', 'a/1 10.9.0.1:9101', 'b/0 10.9.0.2:9100', 'b/1 10.9.0.2:9101'],
  );
  const fromA = buildPools(config);
  const names = (pools: ReturnType<typeof buildPools>) => [...pools.values()].map((pool) => `${pool.name}: ${pool.upstreams.map((upstream) => upstream.name).join(' ')}`);
  assert.deepEqual(names(fromA), ['web: web-a-0 web-a-1 web-b-0 web-b-1', 'clone: clone-b-0', 'bot: bot-0']);
});

test('without hosts, names and addresses are as on one machine', () => {
  const config = validateConfig({ pools: { web: { instances: 2, portBase: 9100 } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } }, '(one)');
  assert.deepEqual(buildPools(config).get('web')!.upstreams.map((upstream) => `${upstream.name} ${upstream.address}`), ['web-0 127.0.0.1:9100', 'web-1 127.0.0.1:9101']);
  assert.deepEqual(siteOf(config, {}, 'box'), { multiHost: false, self: { name: 'box', address: '127.0.0.1' }, hosts: [{ name: 'box', address: '127.0.0.1' }] });
});

test('a host supervises and PM2 starts only its own share of the pools, on its own address', () => {
  const config = siteConfig();
  const onA = siteOf(config, { SWITCHYARD_HOST: 'a' });
  const fleet = new Fleet(config, () => 0.5, onA);
  assert.deepEqual(fleet.all().map((worker) => `${worker.name} ${worker.host}:${worker.port}`), ['web-a-0 10.9.0.1:9100', 'web-a-1 10.9.0.1:9101']);
  assert.equal(fleet.byPm2('worker-web', 1)?.name, 'web-a-1');
  const apps = pm2Apps(config, '/etc/site.yaml', scripts, onA);
  assert.deepEqual(apps.map((app) => app.name), ['proxy', 'supervisor', 'worker-web']);
  for (const app of apps) assert.equal(app.env.SWITCHYARD_HOST, 'a', app.name);
  assert.equal(apps.find((app) => app.name === 'worker-web')!.env.SWITCHYARD_WORKER_HOST, '10.9.0.1');
  const onB = pm2Apps(config, '/etc/site.yaml', scripts, siteOf(config, { SWITCHYARD_HOST: 'b' }));
  assert.deepEqual(onB.map((app) => app.name), ['proxy', 'supervisor', 'worker-web', 'worker-clone']);
});

test('which host this is: SWITCHYARD_HOST, else the hostname; neither names a host -> a clear error', () => {
  const config = siteConfig();
  assert.equal(siteOf(config, {}, 'b').self.address, '10.9.0.2');
  assert.throws(() => siteOf(config, {}, 'laptop'), (error: ConfigError) => /SWITCHYARD_HOST is not set and this machine's hostname "laptop".*one of a, b/.test(error.problems[0]));
  assert.throws(() => siteOf(config, { SWITCHYARD_HOST: 'c' }, 'a'), (error: ConfigError) => /SWITCHYARD_HOST=c is not one of the hosts/.test(error.problems[0]));
});

test('bad site configs are refused with the key and what is expected', () => {
  const pools = { web: {}, clone: {}, bot: {} };
  // one address in two spellings, and addresses no other host can reach this one at
  assert.match(problemsOf({ hosts: { a: { address: 'fd00::1' }, b: { address: 'FD00:0::1' } }, pools }).join('\n'), /hosts\.b\.address: FD00:0::1 is host a's address too/);
  assert.match(problemsOf({ hosts: { a: { address: 'Box1' }, b: { address: 'box1' } }, pools }).join('\n'), /hosts\.b\.address: box1 is host a's address too/);
  assert.match(problemsOf({ hosts: { a: { address: '0.0.0.0' }, b: { address: '10.0.0.2' } }, pools }).join('\n'), /hosts\.a\.address: 0\.0\.0\.0 is a wildcard/);
  assert.match(problemsOf({ hosts: { a: { address: '10.0.0.1' }, b: { address: '::' } }, pools }).join('\n'), /hosts\.b\.address: :: is a wildcard/);
  assert.match(problemsOf({ pools: { ...pools, web: { hosts: ['a'] } } }).join('\n'), /pools\.web\.hosts: only with a top-level hosts list/);
  assert.match(problemsOf({ hosts: { a: { address: '10.0.0.1' } }, pools: { ...pools, web: { hosts: ['a', 'z'] } } }).join('\n'), /pools\.web\.hosts\.1: "z" is not a host of the site; expected one of: a/);
  assert.match(problemsOf({ hosts: { a: { address: '10.0.0.1' }, b: { address: '10.0.0.1' } }, pools }).join('\n'), /hosts\.b\.address: 10\.0\.0\.1 is host a's address too/);
  assert.match(problemsOf({ hosts: { A: { address: '10.0.0.1' } }, pools }).join('\n'), /expected a host name of lowercase letters and digits/);
  assert.match(problemsOf({ hosts: { a: { address: '10.0.0.1' } }, pools }, { SWITCHYARD_HOST: 'b' }).join('\n'), /SWITCHYARD_HOST=b is not one of the hosts: expected one of a/);
  assert.match(problemsOf({ hosts: { a: { address: '10.0.0.1' } }, pools: { ...pools, bot: { targets: ['10.0.0.5:80'], hosts: ['a'] } } }).join('\n'), /pools\.bot\.hosts: not with targets/);
});

async function serveHealth(report: Record<string, unknown>): Promise<{ port: number; close(): void }> {
  const server = http.createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(report)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

test("a worker on another host is admitted when it says it is that host's worker (its stack is not ours to know)", async () => {
  const right = await serveHealth({ pid: 5, pool: 'web', index: 0, host: 'b', stack: 'pm2:1@2' });
  const wrong = await serveHealth({ pid: 6, pool: 'web', index: 0, host: 'c', stack: 'pm2:1@2' });
  try {
    const config = validateConfig(
      {
        hosts: { a: { address: '127.0.0.1' }, b: { address: '127.0.0.2' } },
        pools: { web: { instances: 1, portBase: right.port, hosts: ['b'] }, clone: { instances: 1, portBase: wrong.port, hosts: ['b'] }, bot: { targets: ['127.0.0.1:1'] } },
      },
      '(site)',
    );
    // the "b" workers are reached on 127.0.0.1 here: rebuild their address so the test needs no second interface
    const pools = [...buildPools({ ...config, hosts: { a: { address: '127.0.0.2' }, b: { address: '127.0.0.1' } } }).values()].filter((pool) => pool.name !== 'bot');
    const checker = new HealthChecker(pools, { path: '/_worker/health', intervalMs: 60_000, timeoutMs: 2000 }, pino({ level: 'silent' }), 'pm2:100@200', 'a');
    assert.deepEqual(pools.map((pool) => pool.upstreams[0].state), ['down', 'down'], 'out of rotation until the first check');
    await checker.checkAll();
    const [web, clone] = pools.map((pool) => pool.upstreams[0]);
    assert.equal(web.state, 'ready');
    assert.equal(clone.state, 'down');
    assert.match(clone.lastError!, /not the expected worker: pid 6 reports web\/c\/0, expected clone\/b\/0/);
  } finally {
    right.close();
    wrong.close();
  }
});
