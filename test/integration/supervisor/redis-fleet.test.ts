import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import pino from 'pino';
import { request, waitFor } from '../../helpers/http.ts';
import { startApp, startProxyProcess, type AppProcess, type ProxyProcess } from '../../helpers/processes.ts';
import { freePort } from '../../helpers/worker-harness.ts';
import { Redis } from 'ioredis';
import { FLEET_CHANNEL, FLEET_STATE_KEY } from '../../../lib/fleet-channel.ts';
import { fleetKey, signFleetMessage } from '../../../lib/fleet-signing.ts';
import { FleetPublisher } from '../../../supervisor/fleet-publisher.ts';

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
  publisher = new FleetPublisher([], { url: redisUrl, adminToken: TOKEN }, pino({ level: 'silent' }));
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

test('whoever can publish on Redis but lacks the admin token drains nothing; stale and replayed messages are refused', async () => {
  const forger = new Redis(redisUrl);
  const listener = new Redis(redisUrl);
  const subscribers = async () => Number((await forger.pubsub('NUMSUB', FLEET_CHANNEL))[1]);
  try {
    const earlier = await subscribers();
    const proxy = await startProxy();
    const captured: string[] = [];
    listener.on('message', (_channel: string, text: string) => captured.push(text));
    await listener.subscribe(FLEET_CHANNEL);
    await waitFor(async () => (await subscribers()) === earlier + 2, 'the proxy and the listener subscribed', 5000);

    // A genuine drain and its undo, captured on the way for the replay below.
    await publisher.publish({ 'web-0': 'draining' });
    await waitFor(async () => (await stateIn(proxy, 'web-0')) === 'draining', 'a signed drain applies', 5000);
    await publisher.publish({ 'web-0': 'ready' });
    await waitFor(async () => (await stateIn(proxy, 'web-0')) === 'ready', 'a signed undrain applies', 5000);
    await waitFor(() => captured.length === 2, 'both messages captured', 5000);

    const drainEveryone = { 'web-0': 'draining', 'web-1': 'draining' } as const;
    const genuine = JSON.parse(captured[0]) as { payload: string; sig: string };
    const forgeries = [
      JSON.stringify({ states: drainEveryone, at: new Date().toISOString() }), // the old, unsigned format
      signFleetMessage(fleetKey('some-other-admin-token-0123456789'), drainEveryone, Date.now()),
      JSON.stringify({ payload: JSON.stringify({ at: Date.now(), states: drainEveryone }), sig: genuine.sig }), // a genuine signature on other content
      signFleetMessage(fleetKey(TOKEN), drainEveryone, Date.now() - 60_000), // stale: an old message kept and sent again
      captured[0], // a replay of the genuine drain, inside the window but older than the undrain
      'not json',
    ];
    for (const forgery of forgeries) await forger.publish(FLEET_CHANNEL, forgery);
    // Redis delivers in order: once this later genuine message applies, every forgery was seen first.
    await publisher.publish({ 'web-1': 'draining' });
    await waitFor(async () => (await stateIn(proxy, 'web-1')) === 'draining', 'a genuine message after the forgeries applies', 5000);
    assert.equal(await stateIn(proxy, 'web-0'), 'ready', 'no forged or replayed message drained web-0');

    // The state hash read by proxies that start later: a forged entry there is refused too.
    await forger.hset(FLEET_STATE_KEY, 'web-0', 'draining');
    const late = await startProxy();
    await waitFor(async () => (await stateIn(late, 'web-1')) === 'draining', "the late proxy loaded the hash (web-1's signed drain)", 5000);
    assert.equal(await stateIn(late, 'web-0'), 'ready', 'an unsigned hash entry is ignored');
    await publisher.publish({ 'web-1': 'ready' });
    for (const each of [proxy, late]) await waitFor(async () => (await stateIn(each, 'web-1')) === 'ready', 'web-1 back to ready', 5000);
  } finally {
    forger.disconnect();
    listener.disconnect();
  }
});
