// restart-proxy in the PM2 stack as `npm start` runs it: the proxy master (the PM2 app "proxy")
// replaces its proxy process under browsing and cloning; nothing fails, PM2 restarts nothing, and
// the proxy process behind the master knows the stack's workers as its own (its parent is the
// master, not the PM2 daemon whose launch the workers report).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFleetStack, TEST_TOKEN, type FleetStack } from '../../helpers/fleet-stack.ts';
import { runCli } from '../../helpers/run-cli.ts';
import { assertLoadServed, assertStackStopsClean, pm2Snapshot, proxyState, startBrowserLoad, startCloneLoop } from '../../helpers/stack-load.ts';

const REQUEST_TIMEOUT_MS = 20_000;

describe('restart-proxy under PM2', () => {
  let stack: FleetStack;
  let stopped = false;
  before(async () => {
    stack = await startFleetStack({ pools: { web: { instances: 2 }, clone: { instances: 1 } }, lanes: { bot: { pool: 'web' } }, proxy: { shutdown: { graceMs: 60_000 } } });
  });
  after(async () => {
    if (!stopped) await stack?.stop();
  });

  const foreignWorkers = async () =>
    (await proxyState(stack)).pools.flatMap((pool) => pool.workers).filter((worker) => /not a process of this stack/.test(worker.lastError ?? ''));

  test('the proxy process behind the master counts the workers as its stack\'s', async () => {
    await sleep(3000); // a few health-check rounds
    assert.deepEqual(await foreignWorkers(), []);
    assert.equal((await proxyState(stack)).process?.generation, 1);
  });

  test('npx switchyard restart-proxy under load: no failed page or clone, no PM2 restart', async () => {
    const before = await pm2Snapshot(stack);
    const load = startBrowserLoad(stack, { requestTimeoutMs: REQUEST_TIMEOUT_MS, maxMs: 60_000 });
    const clones = startCloneLoop(stack, { timeoutMs: 60_000, maxMs: 60_000, pauseMs: 200 });
    try {
      await sleep(2000);
      const run = await runCli(['restart-proxy'], { SWITCHYARD_CONFIG: stack.file, SWITCHYARD_DATA: stack.data, SWITCHYARD_ADMIN_TOKEN: TEST_TOKEN }, { home: stack.data, timeoutMs: 90_000 });
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /new proxy pid \d+ \(generation 2\) listening/);
      assert.match(run.stdout, /finished its requests and exited after/);
      await sleep(2000);
    } finally {
      const [pages, cloned] = await Promise.all([load.stop(), clones.stop()]);
      assertLoadServed(pages, cloned, REQUEST_TIMEOUT_MS);
      assert.ok(pages.length > 10 && cloned.length > 0, `the load ran: ${pages.length} pages, ${cloned.length} clones`);
    }
    assert.equal((await proxyState(stack)).process?.generation, 2);
    assert.deepEqual(await foreignWorkers(), []);
    assert.deepEqual(await pm2Snapshot(stack), before, 'the master kept its pid; PM2 restarted nothing');
  });

  test('the stack stops clean: no proxy process left behind the master', async () => {
    stopped = true;
    await assertStackStopsClean(stack);
  });
});
