import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exitDeadlineMs } from '../../../lib/stop-deadlines.ts';
import { validateConfig } from '../../../lib/config.ts';
import { copyOfFixture, removeDir, startWorker, type RunningWorker } from '../../helpers/worker-harness.ts';

// A process's stdout is a pipe to PM2. When PM2 is gone (or stuck), no log write and no exit flush
// may keep the process alive: pino's own destination retried a failed write in its exit flush
// forever (EPIPE included), so a worker looped at exit holding its port.

const here = path.dirname(fileURLToPath(import.meta.url));
const NO_EXIT_MS = 30_000; // far beyond every deadline below: reaching it means the process hung
const SHUTDOWN_TIMEOUT_MS = 1000;
const WORKER_DEADLINE_MS = exitDeadlineMs('worker', validateConfig({ worker: { shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS } }, '(test)'));

let data: string;
let repos: string;
before(async () => ({ data, repos } = await copyOfFixture()));
after(() => removeDir(data));

/** Resolves with how the process ended, or 'hung' after NO_EXIT_MS (then it is SIGKILLed). */
function exitOf(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'hung'> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('hung');
    }, NO_EXIT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

test('lines logged just before exit, the stdout reader gone: the process exits at once', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'log-burst-at-exit.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'info' },
  });
  await new Promise((resolve) => child.stdout!.once('data', resolve));
  child.stdout!.destroy(); // the reader is gone
  await new Promise((resolve) => setTimeout(resolve, 200));
  child.kill('SIGTERM');
  assert.deepEqual(await exitOf(child), { code: 0, signal: null });
});

/** Fills the worker's stdout (far past a pipe's buffer) while nobody reads it: each request logs its URL. */
async function fillStdout(worker: RunningWorker): Promise<void> {
  worker.process.stdout!.pause();
  const longUrl = `${worker.url}/no-such-page?pad=${'x'.repeat(6000)}`;
  for (let i = 0; i < 120; i++) assert.equal((await fetch(`${longUrl}-${i}`).then((response) => response.arrayBuffer().then(() => response))).status, 404);
}

test('a worker whose stdout reader stopped reading and then went away exits on SIGTERM within its deadline', async () => {
  const worker = await startWorker({ data, repos, env: { LOG_LEVEL: 'info' }, worker: { shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS } });
  await fillStdout(worker);
  const stopAt = Date.now();
  worker.process.kill('SIGTERM');
  // by now the worker is at its exit, flushing its log into the full pipe; then the reader goes away
  await new Promise((resolve) => setTimeout(resolve, 1000));
  worker.process.stdout!.destroy();
  const exit = await exitOf(worker.process);
  assert.notEqual(exit, 'hung', 'the worker exits');
  assert.ok(Date.now() - stopAt < WORKER_DEADLINE_MS + 5000, `exited ${Date.now() - stopAt} ms after SIGTERM (deadline ${WORKER_DEADLINE_MS} ms)`);
});

test('a worker whose stdout reader stopped reading for good still exits on SIGTERM within its deadline', async () => {
  const worker = await startWorker({ data, repos, env: { LOG_LEVEL: 'info' }, worker: { shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS } });
  await fillStdout(worker);
  const stopAt = Date.now();
  worker.process.kill('SIGTERM');
  const exit = await exitOf(worker.process);
  worker.process.stdout!.destroy();
  assert.notEqual(exit, 'hung', 'the worker exits');
  assert.ok(Date.now() - stopAt < WORKER_DEADLINE_MS + 5000, `exited ${Date.now() - stopAt} ms after SIGTERM (deadline ${WORKER_DEADLINE_MS} ms): ${JSON.stringify(exit)}`);
});
