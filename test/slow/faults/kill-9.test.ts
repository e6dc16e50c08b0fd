import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLIENT_TIMEOUT, startBoundedLoad, summarizeOutcomes } from '../../helpers/bounded-load.ts';
import { startFleetStack, type FleetStack } from '../../helpers/fleet-stack.ts';
import { waitFor } from '../../helpers/http.ts';
import { processesBelow, stackPorts, waitForLeftovers } from '../../helpers/stack-processes.ts';

// kill -9 of each process type while clients keep coming: PM2 restarts it, requests succeed again,
// and every request ends (a status, or an error) instead of waiting forever. Then the stack stops
// and leaves nothing behind.

const REQUEST_TIMEOUT_MS = 20_000;

describe('kill -9 of each process type under load', () => {
  let stack: FleetStack;
  let stopped = false;

  before(async () => {
    stack = await startFleetStack({
      pools: { web: { instances: 2 }, clone: { instances: 1 } },
      lanes: { bot: { pool: 'web' } },
      proxy: { shutdown: { graceMs: 2000 } },
      worker: { shutdownTimeoutMs: 2000 },
    });
  });
  after(async () => {
    if (!stopped) await stack?.stop();
  });

  const pidOf = async (app: string) => (await stack.pm2.list()).find((process_) => process_.name === app && (process_.instance ?? 0) === 0);

  for (const app of ['proxy', 'supervisor', 'worker-web']) {
    test(`${app}: PM2 restarts it, requests succeed again, none waits forever`, async () => {
      const load = startBoundedLoad({
        urls: [`${stack.proxyUrl}/`, `${stack.proxyUrl}/demo-git`],
        concurrency: 4,
        maxRequests: 4000,
        maxMs: 60_000,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        pauseMs: 10,
      });
      try {
        await waitFor(() => load.outcomes.filter((outcome) => outcome.status === 200).length >= 20, 'pages served under load', 30_000);
        const victim = await pidOf(app);
        assert.ok(victim?.pid, `${app} runs`);
        process.kill(victim.pid, 'SIGKILL');
        await waitFor(async () => {
          const now = await pidOf(app);
          return now !== undefined && now.pid !== victim.pid && now.status === 'online';
        }, `PM2 restarted ${app}`, 30_000);
        if (app === 'supervisor') await waitFor(async () => (await stack.api('GET', '/api/fleet').catch(() => ({ status: 0 }))).status === 200, 'the supervisor answers again', 30_000);
        const restartedAt = Date.now();
        await waitFor(
          () => load.outcomes.filter((outcome) => outcome.startedAt > restartedAt && outcome.status === 200).length >= 20,
          'requests succeed again',
          30_000,
        );
      } finally {
        const outcomes = await load.stop();
        assert.deepEqual(
          outcomes.filter((outcome) => outcome.error === CLIENT_TIMEOUT),
          [],
          `every request ends with a status or an error within ${REQUEST_TIMEOUT_MS} ms: ${summarizeOutcomes(outcomes)}`,
        );
      }
    });
  }

  test('the stack stops under load: no process of it is left, no port is held', async () => {
    const daemonPid = Number(readFileSync(path.join(stack.pm2Home, 'pm2.pid'), 'utf8'));
    const processes = await processesBelow(daemonPid);
    assert.ok(processes.length >= 5, `the stack's processes: ${JSON.stringify(processes)}`);
    const load = startBoundedLoad({ urls: [`${stack.proxyUrl}/`], concurrency: 4, maxRequests: 4000, maxMs: 60_000, requestTimeoutMs: REQUEST_TIMEOUT_MS, pauseMs: 10 });
    await waitFor(() => load.outcomes.filter((outcome) => outcome.status === 200).length >= 10, 'pages served under load', 30_000);
    stopped = true;
    await stack.stop(); // as `pm2 kill`: every app is stopped, then the daemon exits
    const left = await waitForLeftovers(processes, stackPorts(stack.config), 15_000);
    const outcomes = await load.stop();
    assert.deepEqual(left, { processes: [], ports: [] });
    assert.deepEqual(outcomes.filter((outcome) => outcome.error === CLIENT_TIMEOUT), [], summarizeOutcomes(outcomes));
  });
});
