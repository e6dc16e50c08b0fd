import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../../lib/config.ts';
import { HealthChecker } from '../../proxy/health-check.ts';
import { buildPools } from '../../proxy/server.ts';

// The proxy's health checks against real HTTP servers: under PM2 a supervised worker must answer
// with this launch's stack id (lib/stack-id.ts) before it gets traffic; static targets may be any app.

const OURS = 'pm2:100@200';
const servers: http.Server[] = [];

async function serve(body: string): Promise<number> {
  const server = http.createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(body));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

let ports: { ours: number; leftover: number; plain: number };
before(async () => {
  ports = {
    ours: await serve(JSON.stringify({ pid: 11, stack: OURS })),
    leftover: await serve(JSON.stringify({ pid: 22, stack: 'pm2:7@8' })),
    plain: await serve('any app at all'),
  };
});
after(() => servers.forEach((server) => server.close()));

function poolsFor() {
  const config = validateConfig(
    {
      pools: {
        web: { instances: 1, portBase: ports.ours },
        clone: { instances: 1, portBase: ports.leftover },
        bot: { targets: [`127.0.0.1:${ports.plain}`] },
      },
    },
    '(test)',
  );
  return [...buildPools(config).values()];
}

const options = { path: '/_worker/health', intervalMs: 60_000, timeoutMs: 2000 };
const log = pino({ level: 'silent' });
const states = (pools: ReturnType<typeof poolsFor>) =>
  Object.fromEntries(pools.flatMap((pool) => pool.upstreams.map((upstream) => [upstream.name, { state: upstream.state, lastError: upstream.lastError }])));

test('with a stack id, supervised workers start out of rotation; only ours is admitted, the leftover is named', async () => {
  const pools = poolsFor();
  const checker = new HealthChecker(pools, options, log, OURS);
  assert.deepEqual(states(pools), {
    'web-0': { state: 'down', lastError: undefined },
    'clone-0': { state: 'down', lastError: undefined },
    'bot-0': { state: 'ready', lastError: undefined },
  });
  await checker.checkAll();
  assert.deepEqual(states(pools), {
    'web-0': { state: 'ready', lastError: undefined },
    'clone-0': { state: 'down', lastError: `not a process of this stack: pid 22 reports stack pm2:7@8, expected ${OURS}` },
    'bot-0': { state: 'ready', lastError: undefined },
  });
});

test('a ready worker whose port is taken over by a foreign process is ejected', async () => {
  const pools = poolsFor();
  const checker = new HealthChecker(pools, options, log, 'pm2:7@8'); // from this launch's view, web-0 is the stranger
  const web = pools.find((pool) => pool.name === 'web')!;
  web.setState(web.upstreams[0], 'ready'); // in rotation, as the supervisor's word would put it
  await checker.checkAll();
  assert.equal(web.upstreams[0].state, 'down');
  assert.match(web.upstreams[0].lastError!, /pid 11 reports stack pm2:100@200/);
});

test('outside PM2 (no stack id) nothing is compared: every worker that answers is in rotation', async () => {
  const pools = poolsFor();
  const checker = new HealthChecker(pools, options, log, undefined);
  assert.ok(Object.values(states(pools)).every(({ state }) => state === 'ready'));
  await checker.checkAll();
  assert.ok(Object.values(states(pools)).every(({ state }) => state === 'ready'), JSON.stringify(states(pools)));
});
