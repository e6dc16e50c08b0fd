import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ChildProcesses } from '../../../worker/children.ts';
import { createLargeGitRepo } from '../../../worker/seed/large-repos.ts';
import { waitFor } from '../../helpers/http.ts';
import { startPausedClone } from '../../helpers/paused-clone.ts';
import { isLive } from '../../helpers/stack-processes.ts';
import { descendantsOf, removeDir, run, startWorker, tempDir } from '../../helpers/worker-harness.ts';

// An operator's second Ctrl-C (or PM2's second signal) must end a worker now, not wait for the
// clone it is finishing, and take its git children with it.

let data: string;
let repos: string;
let head: string;

before(async () => {
  data = await tempDir();
  repos = path.join(data, 'repos');
  await createLargeGitRepo(new ChildProcesses(), path.join(repos, 'big-git'), 16 * 1024 * 1024, 1);
  head = (await run('git', ['--git-dir', path.join(repos, 'big-git'), 'rev-parse', 'main'])).stdout.trim();
});
after(() => removeDir(data));

test('a second SIGTERM ends a worker at once, although a clone is still running, and kills its git children', async () => {
  const worker = await startWorker({ data, repos, worker: { shutdownTimeoutMs: 120_000 } });
  try {
    const clone = await startPausedClone(worker.port, 'git', { repo: 'big-git', head });
    const children = (await descendantsOf(worker.process.pid!)).filter((proc) => proc.command !== 'node');
    assert.ok(children.length > 0, 'the clone runs git');
    worker.process.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(worker.process.exitCode, null, 'the first signal lets the clone finish');
    const exit = Promise.race([worker.stop('SIGTERM'), new Promise((resolve) => setTimeout(() => resolve('still running'), 10_000))]);
    assert.equal(await exit, 1, 'exit 1: cut short');
    clone.req.destroy();
    // SIGKILLed at the worker's exit; the kernel may take a moment to end them
    await waitFor(() => children.every((child) => !isLive(child.pid)), `no git process is left: ${JSON.stringify(children)}`, 2000);
  } finally {
    await worker.stop('SIGKILL');
  }
});
