import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../lib/config.ts';
import { pm2Apps } from '../../lib/ecosystem.ts';
import { exitDeadlineMs } from '../../lib/stop-deadlines.ts';

const scripts = { proxy: '/dist/proxy.mjs', 'proxy-master': '/dist/proxy-master.mjs', supervisor: '/dist/supervisor.mjs', worker: '/dist/worker.mjs' };

test('the proxy runs without V8 memory reducer; the supervisor and the workers keep the default', () => {
  const apps = pm2Apps(validateConfig({}, '(test config)'), '/etc/switchyard.yaml', scripts);
  const argsOf = (name: string) => apps.find((app) => app.name === name)?.interpreter_args;
  assert.deepEqual(argsOf('proxy'), ['--enable-source-maps', '--no-memory-reducer']);
  assert.deepEqual(argsOf('supervisor'), ['--enable-source-maps']);
  const workers = apps.filter((app) => app.name.startsWith('worker-'));
  assert.ok(workers.length > 0, 'the default config supervises worker pools');
  for (const worker of workers) assert.deepEqual(worker.interpreter_args, ['--enable-source-maps'], worker.name);
});

test('PM2 runs the proxy master, which runs the compiled proxy script (restart-proxy replaces that process)', () => {
  const proxy = pm2Apps(validateConfig({}, '(test config)'), '/etc/switchyard.yaml', scripts).find((app) => app.name === 'proxy')!;
  assert.equal(proxy.script, '/dist/proxy-master.mjs');
  assert.equal(proxy.env.SWITCHYARD_PROXY_SCRIPT, '/dist/proxy.mjs');
});

test("PM2's kill_timeout comes after each process's own exit deadline, so PM2's SIGKILL is only a second line", () => {
  const config = validateConfig({ worker: { shutdownTimeoutMs: 90_000 }, pools: { web: { drainTimeoutSec: 5 }, clone: {}, bot: {} } }, '(test config)');
  const apps = pm2Apps(config, '/etc/switchyard.yaml', scripts);
  const killTimeout = (name: string) => apps.find((app) => app.name === name)!.kill_timeout!;
  assert.ok(killTimeout('proxy') > exitDeadlineMs('proxy-master', config));
  assert.ok(exitDeadlineMs('proxy-master', config) > exitDeadlineMs('proxy', config), 'the master outlives the proxy processes it waits for');
  assert.ok(killTimeout('supervisor') > exitDeadlineMs('supervisor', config));
  assert.ok(killTimeout('worker-web') > exitDeadlineMs('worker', config), 'a worker shutdown timeout longer than its drain');
  assert.ok(killTimeout('worker-clone') >= (config.pools.clone.drainTimeoutSec + 10) * 1000, 'and never shorter than a drain');
});
