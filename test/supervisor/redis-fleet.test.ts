import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import pino from 'pino';
import { request, waitFor } from '../helpers/http.ts';
import { startApp, startProxyProcess, type AppProcess, type ProxyProcess } from '../helpers/processes.ts';
import { freePort } from '../helpers/worker-harness.ts';
import { FleetPublisher } from '../../supervisor/fleet-publisher.ts';

const TOKEN = 'redis-fleet-test-token-0123456789';
let redis: ChildProcess;
let redisUrl: string;
let apps: AppProcess[];
const proxies: ProxyProcess[] = [];
let publisher: FleetPublisher;

/** A private redis-server on a free port, so the shared hash of a real deployment is never touched. */
async function startRedis(): Promise<void> {
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    redis.stdout!.on('data', (data: Buffer) => {
      output += data.toString();
      if (output.includes('Ready to accept connections')) resolve();
    });
    redis.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
  });
  redis.stdout!.resume();
  redisUrl = `redis://127.0.0.1:${port}`;
}

async function startProxy(): Promise<ProxyProcess> {
  const controlPort = await freePort();
  const proxy = await startProxyProcess(
    { proxy: { host: '127.0.0.1', port: 0, control: { port: controlPort }, debugHeaders: true }, pools: { web: { targets: apps.map((app) => app.address) } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } },
    { REDIS_URL: redisUrl, SWITCHYARD_ADMIN_TOKEN: TOKEN },
  );
  proxies.push(proxy);
  return Object.assign(proxy, { controlUrl: `http://127.0.0.1:${controlPort}` });
}

async function stateIn(proxy: ProxyProcess & { controlUrl?: string }, worker: string): Promise<string> {
  const state = JSON.parse((await request(`${proxy.controlUrl}/state`, { headers: { authorization: `Bearer ${TOKEN}` } })).body);
  return state.pools[0].workers.find((entry: { name: string }) => entry.name === worker).state;
}

before(async () => {
  await startRedis();
  apps = [await startApp('one'), await startApp('two')];
  publisher = new FleetPublisher([], redisUrl, pino({ level: 'silent' }));
});
after(async () => {
  await publisher?.close();
  await Promise.all(proxies.map((proxy) => proxy.stop()));
  await Promise.all((apps ?? []).map((app) => app.stop()));
  redis?.kill('SIGKILL');
  if (redis) await once(redis, 'exit').catch(() => {});
});

test('with REDIS_URL, two proxies on different ports apply the same drain; a proxy started later catches up', async () => {
  const first = await startProxy();
  const second = await startProxy();
  assert.notEqual(first.port, second.port);
  await new Promise((resolve) => setTimeout(resolve, 300)); // both subscribed
  await publisher.publish({ 'web-0': 'draining' });
  for (const proxy of [first, second]) {
    await waitFor(async () => (await stateIn(proxy, 'web-0')) === 'draining', `proxy :${proxy.port} sees the drain`, 5000);
    for (let i = 0; i < 4; i++) assert.equal((await request(`${proxy.url}/`)).headers['x-app'], 'two');
  }
  const late = await startProxy();
  await waitFor(async () => (await stateIn(late, 'web-0')) === 'draining', 'a late proxy loads the current fleet state', 5000);

  await publisher.publish({ 'web-0': 'ready' });
  for (const proxy of [first, second, late]) await waitFor(async () => (await stateIn(proxy, 'web-0')) === 'ready', `proxy :${proxy.port} back to ready`, 5000);
});
