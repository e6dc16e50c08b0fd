import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startBoundedLoad, summarizeOutcomes } from '../../helpers/bounded-load.ts';
import { startFleetStack, TEST_TOKEN, type FleetStack } from '../../helpers/fleet-stack.ts';
import { request, waitFor } from '../../helpers/http.ts';
import { copyOfFixture, removeDir, startWorker, type RunningWorker } from '../../helpers/worker-harness.ts';

// The scenario: a worker of an earlier launch, still running, holds the port of web-0 of
// the new stack. The new web-0 cannot bind: it must say who holds the port, the supervisor must
// show it, and the proxy must never send the new stack's traffic to the leftover (which answers
// health checks like any worker, from its old data directory).

let holder: RunningWorker;
let holderData: string;
let stack: FleetStack;

before(async () => {
  stack = await startFleetStack(
    { pools: { web: { instances: 2 }, clone: { instances: 1 } }, lanes: { bot: { pool: 'web' } } },
    {},
    {
      async beforeStart(config) {
        const old = await copyOfFixture();
        holderData = old.data;
        holder = await startWorker({ ...old, port: config.pools.web.portBase, env: { SWITCHYARD_POOL: 'web', SWITCHYARD_WORKER_INDEX: '0' } });
      },
      isUp: (workers) => workers.filter((worker) => worker.name !== 'web-0').every((worker) => worker.state === 'ready'),
    },
  );
});

after(async () => {
  await holder?.stop('SIGKILL');
  await stack?.stop();
  if (holderData) await removeDir(holderData);
});

const proxyWorker = async (name: string) => {
  const state = JSON.parse((await request(`${stack.controlUrl}/state`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).body);
  return state.pools.flatMap((pool: { workers: Array<{ name: string }> }) => pool.workers).find((worker: { name: string }) => worker.name === name);
};

test("the worker that cannot bind names the port's holder in one fatal line", async () => {
  const logs = path.join(stack.pm2Home, 'logs');
  const fatal = () =>
    readdirSync(logs)
      .filter((file) => file.startsWith('worker-web-out-'))
      .flatMap((file) => readFileSync(path.join(logs, file), 'utf8').split('\n'))
      .filter((line) => line.includes('"level":60'))
      .map((line) => JSON.parse(line));
  await waitFor(() => fatal().length > 0, 'a fatal line from worker-web', 30_000);
  const [line] = fatal();
  assert.equal(line.port, stack.config.pools.web.portBase);
  assert.equal(line.exitCode, 98);
  assert.deepEqual(
    line.holders.map((found: { pid: number }) => found.pid),
    [holder.process.pid],
  );
  assert.match(line.msg, new RegExp(`held by pid ${holder.process.pid} \\(.*worker/main\\.ts`));
});

test('the supervisor shows the failure as a fleet event of web-0', async () => {
  let events: Array<{ kind: string; worker?: string; reason?: string }> = [];
  await waitFor(
    async () => {
      events = (await stack.api('GET', '/api/events')).body.events;
      return events.some((event) => event.kind === 'error' && event.worker === 'web-0');
    },
    'an error event for web-0',
    30_000,
  );
  const event = events.find((candidate) => candidate.kind === 'error' && candidate.worker === 'web-0')!;
  assert.match(event.reason!, new RegExp(`held by pid ${holder.process.pid}\\b`));
  assert.equal((await stack.fleet()).find((worker) => worker.name === 'web-0')?.state, 'down');
});

test('the proxy never routes to the leftover, and names it', async () => {
  await waitFor(async () => /not a process of this stack/.test((await proxyWorker('web-0'))?.lastError ?? ''), "the proxy names web-0's port holder", 15_000);
  assert.equal((await proxyWorker('web-0')).state, 'down');
  const load = startBoundedLoad({ urls: [`${stack.proxyUrl}/`, `${stack.proxyUrl}/demo-git`], concurrency: 4, maxRequests: 80, maxMs: 30_000, requestTimeoutMs: 15_000 });
  const outcomes = await load.done;
  assert.equal(outcomes.length, 80, summarizeOutcomes(outcomes));
  assert.deepEqual(new Set(outcomes.map((outcome) => outcome.status)), new Set([200]), summarizeOutcomes(outcomes));
  assert.deepEqual(new Set(outcomes.map((outcome) => outcome.worker)), new Set(['web-1']));
  assert.equal((await holder.health()).served, 0, 'the leftover served nothing');
});

test('once the holder is gone, the stack binds its own web-0 and routes to it', async () => {
  await holder.stop('SIGTERM');
  await waitFor(async () => (await stack.fleet()).find((worker) => worker.name === 'web-0')?.state === 'ready', 'web-0 ready', 60_000);
  await waitFor(async () => (await proxyWorker('web-0'))?.state === 'ready', 'web-0 in rotation', 15_000);
});
