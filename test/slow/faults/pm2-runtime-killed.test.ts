import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ChildProcesses } from '../../../worker/children.ts';
import { createLargeGitRepo } from '../../../worker/seed/large-repos.ts';
import { CLIENT_TIMEOUT, startBoundedLoad, summarizeOutcomes } from '../../helpers/bounded-load.ts';
import { waitFor } from '../../helpers/http.ts';
import { startPausedClone } from '../../helpers/paused-clone.ts';
import { startRuntimeStack } from '../../helpers/runtime-stack.ts';
import { stackPorts, waitForLeftovers } from '../../helpers/stack-processes.ts';
import { run } from '../../helpers/worker-harness.ts';

// `npm start` is pm2-runtime in the foreground. When it is killed with SIGKILL, nobody stops the
// apps: each must notice (its IPC channel closes) and exit by itself within its deadline, killing
// its git/hg children, so that the next start finds every port free.

const REQUEST_TIMEOUT_MS = 20_000;
// the slowest exit deadline (the supervisor's 8 s, lib/stop-deadlines.ts) and room for a loaded machine
const GONE_WITHIN_MS = 15_000;

test('kill -9 of pm2-runtime under load: every process of the stack exits by itself, every port is freed', async () => {
  let head = '';
  const stack = await startRuntimeStack(
    {
      pools: { web: { instances: 2 }, clone: { instances: 1 } },
      lanes: { bot: { pool: 'web' } },
      proxy: { shutdown: { graceMs: 2000 } },
      worker: { shutdownTimeoutMs: 2000 },
    },
    {
      // a clone much larger than socket buffers holds its git child mid-stream when PM2 dies
      async beforeStart(config) {
        const repo = path.join(config.worker.repos!, 'big-git');
        await createLargeGitRepo(new ChildProcesses(), repo, 16 * 1024 * 1024, 1);
        head = (await run('git', ['--git-dir', repo, 'rev-parse', 'main'])).stdout.trim();
      },
    },
  );
  try {
    const load = startBoundedLoad({
      urls: [`${stack.proxyUrl}/`, `${stack.proxyUrl}/demo-git`],
      concurrency: 4,
      maxRequests: 5000,
      maxMs: 60_000,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      pauseMs: 20,
    });
    const clone = await startPausedClone(stack.config.pools.clone.portBase, 'git', { repo: 'big-git', head });
    await waitFor(() => load.outcomes.filter((outcome) => outcome.status === 200).length >= 20, 'pages served under load', 30_000);

    const before = await stack.processes();
    const workers = before.filter((process_) => process_.command.includes('worker.mjs'));
    assert.equal(workers.length, 3, `the workers run: ${JSON.stringify(before)}`);
    assert.ok(before.some((process_) => /\bgit\b/.test(process_.command)), `the clone's git child runs: ${JSON.stringify(before)}`);

    process.kill(stack.runtime.pid!, 'SIGKILL');
    const left = await waitForLeftovers(before, stackPorts(stack.config), GONE_WITHIN_MS);
    const outcomes = await load.stop();
    clone.req.destroy();

    assert.deepEqual(left, { processes: [], ports: [] }, `left ${GONE_WITHIN_MS} ms after PM2 died`);
    assert.deepEqual(
      outcomes.filter((outcome) => outcome.error === CLIENT_TIMEOUT),
      [],
      `every request ends with a status or an error: ${summarizeOutcomes(outcomes)}`,
    );
  } finally {
    await stack.stop();
  }
});
