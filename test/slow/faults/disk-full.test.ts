import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { summarizeOutcomes, type LoadOutcome } from '../../helpers/bounded-load.ts';
import { startFleetStack, type FleetStack } from '../../helpers/fleet-stack.ts';
import { request, waitFor } from '../../helpers/http.ts';
import { SmallTmpfs } from '../../helpers/small-tmpfs.ts';
import { assertLoadServed, assertStackStopsClean, clonesSucceedAfter, pm2Snapshot, startBrowserLoad, startCloneLoop, type CloneOutcome } from '../../helpers/stack-load.ts';

// The whole stack with everything it writes on one small disk of its own (a tmpfs the test
// mounts): the data dir with the supervisor's embedded history (PGlite), the proxy's body spool
// and the repos, and PM2_HOME with the apps' logs and pid files. The disk is filled to the last
// byte while browsers page, git/hg clone, large request bodies arrive and a worker is recycled
// through the API (PM2, its logs and the history all write). Nothing may crash or restart but the
// recycled worker, no request may wait forever, pages and clones keep working (no failure
// allowed: they only read the disk), a body that needs the spool gets 503 with Retry-After, and
// once the space is freed the spool and the history work again, with what happened meanwhile.

const DISK_BYTES = 192 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 20_000;
const CLONE_TIMEOUT_MS = 60_000;
const RECOVERY_TIMEOUT_MS = 90_000;
const PHASE_MAX_MS = 300_000;
// above the 64 KiB a request body may hold in memory (proxy.bodies.memoryBytes): the rest goes to the spool
const SPOOLED_BODY = Buffer.alloc(512 * 1024, 'x');
// drain/undrain pairs made to push the history past what still fits; it fails after a few dozen
const MAX_TOGGLES = 400;

describe('a full disk under the data dir, under load', () => {
  let disk: SmallTmpfs;
  let stack: FleetStack;
  let stopped = false;
  const saved = { DATABASE_URL: process.env.DATABASE_URL, REDIS_URL: process.env.REDIS_URL };

  before(async () => {
    disk = SmallTmpfs.mount(DISK_BYTES);
    const dataDir = path.join(disk.dir, 'data');
    mkdirSync(dataDir);
    // the embedded history on this disk, and nothing on another host
    delete process.env.DATABASE_URL;
    delete process.env.REDIS_URL;
    stack = await startFleetStack(
      {
        pools: { web: { instances: 2 }, clone: { instances: 1 } },
        lanes: { bot: { pool: 'web' } },
        proxy: { shutdown: { graceMs: 2000 } },
        worker: { shutdownTimeoutMs: 2000 },
      },
      {},
      { dataDir },
    );
    assert.ok(stack.pm2Home.startsWith(disk.dir) && stack.config.worker.repos!.startsWith(disk.dir), 'PM2_HOME and the repos are on the small disk');
    await waitFor(async () => (await stack.api('GET', '/api/fleet')).body.history?.healthy === true, 'the embedded history open', 120_000);
  });

  after(async () => {
    if (!stopped) await stack?.stop();
    disk?.unfill();
    disk?.unmount();
    Object.assign(process.env, Object.fromEntries(Object.entries(saved).filter(([, value]) => value !== undefined)));
  });

  /** A POST whose body must be spooled to disk before it may take a worker. */
  const postSpooledBody = () =>
    request(`${stack.proxyUrl}/demo-git`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(SPOOLED_BODY.length) },
      body: SPOOLED_BODY,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });

  async function eventsSince(since: number): Promise<{ source: string; events: Array<{ kind: string; worker?: string; reason?: string }> }> {
    const { status, body } = await stack.api('GET', `/api/events?since=${new Date(since).toISOString()}`);
    assert.equal(status, 200, `the event log answers: ${JSON.stringify(body)}`);
    return body;
  }

  test('the disk filled to the last byte and freed again: no crash, no hang, 503 for spooled bodies, pages and clones work, history and spool recover', async () => {
    const startedAt = Date.now();
    const baseline = await pm2Snapshot(stack);
    const beforeFill = await postSpooledBody();
    assert.notEqual(beforeFill.status, 503, 'a spooled body reaches a worker while there is room');
    assert.ok(beforeFill.headers['x-switchyard-worker'], `answered by a worker: ${beforeFill.status} ${beforeFill.body.slice(0, 200)}`);

    const load = startBrowserLoad(stack, { requestTimeoutMs: REQUEST_TIMEOUT_MS, maxMs: PHASE_MAX_MS });
    const clones = startCloneLoop(stack, { timeoutMs: CLONE_TIMEOUT_MS, maxMs: PHASE_MAX_MS, pauseMs: 200 });
    const pagesOkSince = (since: number, count: number) => load.outcomes.filter((outcome) => outcome.startedAt >= since && outcome.status === 200).length >= count;
    let pages: LoadOutcome[] = [];
    let cloned: CloneOutcome[] = [];
    let recycledPid = 0;
    let toggles = 0;
    const numbers: Record<string, unknown> = {};
    try {
      await waitFor(() => pagesOkSince(0, 10), 'pages served before the disk fills', 30_000);

      const fullAt = Date.now();
      disk.fill();
      assert.equal(disk.freeBytes(), 0, 'the disk is full');
      const refused = await postSpooledBody();
      assert.equal(refused.status, 503, `a body that needs the spool is refused, not hung: ${refused.status} ${refused.body.slice(0, 200)}`);
      assert.equal(refused.headers['retry-after'], '1');

      const oldPid = baseline['worker-web#0'].pid;
      const recycle = await stack.api('POST', '/api/workers/web-0/recycle');
      assert.equal(recycle.status, 202, JSON.stringify(recycle.body));
      await waitFor(
        async () => {
          const now = (await pm2Snapshot(stack))['worker-web#0'];
          const worker = (await stack.fleet()).find((entry) => entry.name === 'web-0');
          recycledPid = now?.pid ?? 0;
          return now?.status === 'online' && now.pid !== oldPid && worker?.state === 'ready';
        },
        'web-0 recycled and ready again on the full disk',
        RECOVERY_TIMEOUT_MS,
      );
      // Drains and undrains through the API until the history's writes meet the full disk (a few
      // rows still fit in the pages and WAL it has): each one is two fleet events.
      while ((await stack.api('GET', '/api/fleet')).body.history?.healthy !== false && toggles < MAX_TOGGLES) {
        assert.equal((await stack.api('POST', '/api/workers/web-1/drain')).status, 202);
        assert.equal((await stack.api('POST', '/api/workers/web-1/ready')).status, 200);
        toggles++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      numbers.togglesUntilHistoryFailed = toggles;
      numbers.historyWhileFull = (await stack.api('GET', '/api/fleet')).body.history;
      assert.equal(numbers.historyWhileFull && (numbers.historyWhileFull as { healthy: boolean }).healthy, false, 'history writes fail on the full disk');
      await waitFor(() => pagesOkSince(fullAt, 30), 'pages served on the full disk', 60_000);
      await clonesSucceedAfter(clones, fullAt, 'on the full disk', CLONE_TIMEOUT_MS * 2);
      assert.equal((await stack.api('GET', '/api/fleet')).status, 200, 'the supervisor answers on the full disk');
      await eventsSince(fullAt);
      assert.equal((await postSpooledBody()).status, 503, 'still refused while the disk is full');

      const freedAt = Date.now();
      disk.unfill();
      await waitFor(async () => (await postSpooledBody()).status !== 503, 'the spool takes bodies again', RECOVERY_TIMEOUT_MS);
      numbers.spoolRecoveredMs = Date.now() - freedAt;
      await waitFor(
        async () => {
          const { source, events } = await eventsSince(fullAt);
          const undrains = events.filter((event) => event.kind === 'ready' && event.worker === 'web-1' && event.reason === 'manual').length;
          return source === 'history' && events.some((event) => event.kind === 'recycle' && event.worker === 'web-0') && undrains >= toggles;
        },
        'the recycle and every drain made on the full disk are written to the history',
        RECOVERY_TIMEOUT_MS,
      );
      await waitFor(async () => (await stack.api('GET', '/api/fleet')).body.history?.healthy === true, 'the history healthy', RECOVERY_TIMEOUT_MS);
      numbers.historyRecoveredMs = Date.now() - freedAt;
      const recoveredAt = Date.now();
      await waitFor(() => pagesOkSince(recoveredAt, 30), 'pages served after the disk is freed', 60_000);
      await clonesSucceedAfter(clones, recoveredAt, 'after the disk is freed', CLONE_TIMEOUT_MS * 2);
    } finally {
      [pages, cloned] = await Promise.all([load.stop(), clones.stop()]);
      numbers.pages = summarizeOutcomes(pages);
      numbers.clones = `${cloned.filter((clone) => !clone.error).length} of ${cloned.length} verified`;
      console.log(`full disk: ${JSON.stringify(numbers)}`);
    }

    assertLoadServed(pages, cloned, REQUEST_TIMEOUT_MS);
    const expected = { ...baseline, 'worker-web#0': { ...baseline['worker-web#0'], pid: recycledPid, restarts: baseline['worker-web#0'].restarts + 1 } };
    assert.deepEqual(await pm2Snapshot(stack), expected, 'nothing restarted but the recycled worker, once');
    const { events } = await eventsSince(startedAt);
    assert.deepEqual(events.filter((event) => event.kind === 'crash' || event.kind === 'error'), [], 'no crash and no error in the fleet events');
  });

  test('the stack stops on the disk it filled: no process of it is left, no port is held', async () => {
    stopped = true;
    await assertStackStopsClean(stack);
  });
});
