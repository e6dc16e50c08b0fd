import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isLive } from '../../helpers/stack-processes.ts';

// lib/exit-deadline.ts and lib/process-stop.ts with real processes: a stop is bounded even when
// the main thread never comes back, a second signal exits at once, and PM2 going away (the IPC
// channel closing) is a stop request like SIGTERM.

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'stop-requests.ts');
const NO_EXIT_MS = 30_000; // far beyond every deadline below: reaching it means the process did not exit

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Fixture {
  child: ChildProcess;
  /** the `sleep` it started in its own process group */
  sleeperPid: number;
  exit: Promise<Exit>;
}

const started: Fixture[] = [];

async function startFixture(stop: 'resolve' | 'never' | 'spin', deadlineMs: number): Promise<Fixture> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, STOP: stop, DEADLINE_MS: String(deadlineMs), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exit = new Promise<Exit>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), NO_EXIT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  let output = '';
  const sleeperPid = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const ready = /ready (\d+)/.exec(output);
      if (ready) resolve(Number(ready[1]));
    });
    child.once('exit', () => reject(new Error(`the fixture exited before it was ready: ${output}`)));
  });
  const fixtureProcess = { child, sleeperPid, exit };
  started.push(fixtureProcess);
  return fixtureProcess;
}

afterEach(() => {
  for (const { child, sleeperPid } of started.splice(0)) {
    child.kill('SIGKILL');
    if (isLive(sleeperPid)) process.kill(sleeperPid, 'SIGKILL');
  }
});

test('a main thread stuck in a synchronous loop is SIGKILLed at the deadline, its process groups first', async () => {
  const fixtureProcess = await startFixture('spin', 1500);
  const stopAt = Date.now();
  fixtureProcess.child.kill('SIGTERM');
  const exit = await fixtureProcess.exit;
  const ms = Date.now() - stopAt;
  assert.equal(exit.signal, 'SIGKILL', `exit ${JSON.stringify(exit)} after ${ms} ms`);
  assert.ok(ms >= 1400, `not before its deadline: ${ms} ms`);
  assert.ok(ms < 10_000, `killed ${ms} ms after SIGTERM`);
  assert.equal(isLive(fixtureProcess.sleeperPid), false, 'the tracked process group is killed too');
});

test('a second SIGTERM exits at once although the graceful stop never finishes', async () => {
  const fixtureProcess = await startFixture('never', 60_000);
  fixtureProcess.child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(fixtureProcess.child.exitCode, null, 'the first signal waits for the graceful stop');
  const stopAt = Date.now();
  fixtureProcess.child.kill('SIGTERM');
  const exit = await fixtureProcess.exit;
  assert.deepEqual(exit, { code: 1, signal: null });
  assert.ok(Date.now() - stopAt < 10_000, `exited ${Date.now() - stopAt} ms after the second signal`);
});

test('the IPC channel closing (PM2 gone) stops the process like SIGTERM', async () => {
  const fixtureProcess = await startFixture('resolve', 60_000);
  fixtureProcess.child.disconnect();
  assert.deepEqual(await fixtureProcess.exit, { code: 0, signal: null });
});
