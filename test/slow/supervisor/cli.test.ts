// `switchyard fleet | roll | recycle | drain | undrain` as an operator runs them, against a real
// supervised fleet under PM2: what they print, what they wait for and what they exit with.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFleetStack, TEST_TOKEN, type FleetStack } from '../../helpers/fleet-stack.ts';
import { historyDatabaseEnv } from '../../helpers/history-db.ts';
import { waitFor } from '../../helpers/http.ts';
import { runCli } from '../../helpers/run-cli.ts';

describe('the switchyard command line against a running fleet', () => {
  let stack: FleetStack;
  let home: string;

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'switchyard-cli-home-'));
    stack = await startFleetStack(
      { pools: { web: { instances: 2, recycle: { maxRequests: 500, jitter: 0 } }, clone: { instances: 2, drainTimeoutSec: 20 } }, lanes: { bot: { pool: 'web' } } },
      await historyDatabaseEnv(),
    );
  });
  after(async () => {
    await stack?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli(args, { SWITCHYARD_CONFIG: stack.file, SWITCHYARD_ADMIN_TOKEN: TEST_TOKEN }, { home, timeoutMs: 120_000 });
  const worker = async (name: string) => (await stack.fleet()).find((candidate) => candidate.name === name)!;
  const lineOf = (output: string, name: string) => output.split('\n').find((line) => line.includes(` ${name} `)) ?? '';

  test('fleet: a table with one row per worker, the pools, proxies and history below; --json for scripts', async () => {
    const web0 = await worker('web-0');
    const run = await cli('fleet');
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /\x1b\[/, 'no colour codes when stdout is not a terminal');
    const header = run.stdout.split('\n').find((line) => line.includes('worker'))!;
    for (const column of ['worker', 'state', 'pid', 'in-flight', 'served', 'rss / limit', 'uptime', 'next recycle']) assert.ok(header.includes(column), `column ${column}: ${header}`);
    for (const name of ['web-0', 'web-1', 'clone-0', 'clone-1']) assert.match(lineOf(run.stdout, name), /ready/, `${name} is a row:\n${run.stdout}`);
    const row = lineOf(run.stdout, 'web-0');
    assert.ok(row.includes(` ${web0.pid} `), `web-0's pid ${web0.pid} in ${row}`);
    assert.match(row, /\d+ requests/, `web-0's next recycle is counted in requests (maxRequests 500): ${row}`);
    assert.match(lineOf(run.stdout, 'clone-0'), /never|in \d|\+\d+ MB RSS/, 'clone workers keep the default limits');
    assert.match(run.stdout, /^ {2}web: 2 workers, maxUnavailable 1, .*recycle at 500 requests/m);
    assert.match(run.stdout, /^proxies \(fleet state over the control API\):$/m);
    assert.match(run.stdout, /│ \S+:\d+ +│ \S+ +│ up +│ +\d+ │/, `the proxy's row: id, address, up, connections:\n${run.stdout}`);
    assert.match(run.stdout, /^history: postgres, healthy/m);

    const json = await cli('fleet', '--json');
    assert.equal(json.code, 0, json.stderr);
    const snapshot = JSON.parse(json.stdout);
    assert.deepEqual(snapshot.pools.map((pool: { name: string }) => pool.name).sort(), ['clone', 'web']);
    assert.equal(snapshot.proxies[0].up, true, '--json passes the proxy objects through');

    const wrong = await cli('fleet', '--yaml');
    assert.equal(wrong.code, 2, 'an unknown option is a usage error');
    assert.match(wrong.stderr, /--yaml/);
  });

  test('recycle waits for the new process and says how the drain went; exit 0', async () => {
    const before = await worker('clone-1');
    const run = await cli('recycle', 'clone-1');
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /^recycling clone-1 \(gives up after .+\)$/m);
    assert.match(run.stdout, /^clone-1 {2}drained in [\d.]+ (ms|s) {2}restarted {2}healthy/m);
    const now = await worker('clone-1');
    assert.equal(now.state, 'ready', 'the command returned only once the worker was back');
    assert.notEqual(now.pid, before.pid, 'a new process');
  });

  test('roll follows every worker of the pool, one line each, and exits 0', async () => {
    const pids = [(await worker('web-0')).pid, (await worker('web-1')).pid];
    const run = await cli('roll', 'web');
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
    for (const name of ['web-0', 'web-1']) assert.match(run.stdout, new RegExp(`^${name} {2}drained in .* healthy`, 'm'));
    const after = [(await worker('web-0')).pid, (await worker('web-1')).pid];
    assert.ok(after.every((pid, index) => pid !== pids[index]), `both restarted: ${pids} -> ${after}`);
  });

  test('drain waits until the worker is idle and leaves it out; undrain puts it back', async () => {
    const drain = await cli('drain', 'clone-0');
    assert.equal(drain.code, 0, `${drain.stdout}${drain.stderr}`);
    assert.match(drain.stdout, /^clone-0 {2}drained in /m);
    assert.equal((await worker('clone-0')).state, 'draining');
    const again = await cli('drain', 'clone-0');
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already draining, nothing to wait for/);
    const undrain = await cli('undrain', 'clone-0');
    assert.equal(undrain.code, 0, undrain.stderr);
    assert.match(undrain.stdout, /clone-0 {2}back in rotation/);
    await waitFor(async () => (await worker('clone-0')).state === 'ready', 'clone-0 ready again');
  });

  test('--no-wait prints the API answer and returns at once', async () => {
    const run = await cli('recycle', 'web-1', '--no-wait');
    assert.equal(run.code, 0, run.stderr);
    const answer = JSON.parse(run.stdout);
    assert.equal(answer.worker, 'web-1');
    assert.equal(answer.queued, true);
    await waitFor(async () => (await worker('web-1')).state === 'ready' && (await worker('web-1')).pendingRecycle === undefined, 'web-1 recycled', 60_000);
  });

  test('a recycle that cannot finish in time exits 1 and names the worker and where it is', async () => {
    const run = await cli('recycle', 'web-0', '--timeout', '0.2');
    assert.equal(run.code, 1, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /^web-0 {2}timed out after 200 ms \((ready|draining|restarting)\)$/m);
    await waitFor(async () => (await worker('web-0')).state === 'ready' && (await worker('web-0')).pendingRecycle === undefined, 'web-0 recycled', 60_000);
  });

  test('mistakes: an unknown worker or pool, a missing argument, a supervisor that is not there', async () => {
    const unknown = await cli('recycle', 'web-9');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /404/);
    assert.match(unknown.stderr, /web-9/);
    const pool = await cli('roll', 'nope');
    assert.equal(pool.code, 1);
    assert.match(pool.stderr, /nope/);
    const missing = await cli('drain');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /expected one worker/);
    const badTimeout = await cli('roll', 'web', '--timeout', 'soon');
    assert.equal(badTimeout.code, 2);
    assert.match(badTimeout.stderr, /--timeout takes seconds/);
  });
});
