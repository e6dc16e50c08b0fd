// `switchyard reload`, POST /api/reload and SIGHUP against a real supervisor process and a real
// proxy process reading one config file (pools of static targets: no PM2 app to start).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { parse, stringify } from 'yaml';
import { PROJECT_ROOT } from '../../../lib/config.ts';
import { deepMerge } from '../../../proxy/testing.ts';
import { Pm2Client } from '../../../supervisor/pm2-client.ts';
import { historyDatabaseEnv } from '../../helpers/history-db.ts';
import { request, waitFor } from '../../helpers/http.ts';
import { spawnUntil, startApp, startProxyProcess, type AppProcess, type ProxyProcess } from '../../helpers/processes.ts';
import { runCli } from '../../helpers/run-cli.ts';
import { freePort } from '../../helpers/worker-harness.ts';

const TOKEN = 'reload-test-admin-token-0123456789';

describe('reload: the API, the command line and SIGHUP', () => {
  let apps: AppProcess[];
  let proxy: ProxyProcess;
  let supervisor: ChildProcess;
  let supervisorUrl: string;
  let controlUrl: string;
  let original: Record<string, unknown>;
  let home: string;
  let env: Record<string, string>;

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'switchyard-reload-home-'));
    apps = [await startApp('one'), await startApp('two')];
    const controlPort = await freePort();
    const supervisorPort = await freePort();
    proxy = await startProxyProcess(
      {
        proxy: { host: '127.0.0.1', port: 0, control: { port: controlPort }, debugHeaders: true },
        supervisor: { port: supervisorPort },
        pools: { web: { targets: [apps[0].address] } },
        lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } },
      },
      { SWITCHYARD_ADMIN_TOKEN: TOKEN },
    );
    original = parse(readFileSync(proxy.configFile, 'utf8'));
    const data = path.dirname(proxy.configFile);
    env = { SWITCHYARD_CONFIG: proxy.configFile, SWITCHYARD_DATA: data, SWITCHYARD_ADMIN_TOKEN: TOKEN };
    ({ child: supervisor } = await spawnUntil(
      path.join(PROJECT_ROOT, 'supervisor', 'main.ts'),
      { ...env, ...(await historyDatabaseEnv()), PM2_HOME: path.join(data, 'pm2'), LOG_LEVEL: 'info' },
      /"msg":"supervisor listening"/,
    ));
    supervisorUrl = `http://127.0.0.1:${supervisorPort}`;
    controlUrl = `http://127.0.0.1:${controlPort}`;
  });

  after(async () => {
    if (supervisor && supervisor.exitCode === null) {
      supervisor.kill('SIGKILL');
      await once(supervisor, 'exit');
    }
    if (proxy) {
      const pm2 = new Pm2Client(path.join(path.dirname(proxy.configFile), 'pm2'));
      await pm2.killDaemon().catch(() => {}); // the supervisor's connection started one
      pm2.disconnect();
      await proxy.stop();
      rmSync(path.dirname(proxy.configFile), { recursive: true, force: true });
    }
    await Promise.all((apps ?? []).map((app) => app.stop()));
    rmSync(home, { recursive: true, force: true });
  });

  const writeConfig = (changes: Record<string, unknown>) => writeFileSync(proxy.configFile, stringify(deepMerge(original, changes)));
  const cli = (...args: string[]) => runCli(args, env, { home, timeoutMs: 60_000 });
  const api = async (method: string, route: string) => {
    const response = await request(`${supervisorUrl}${route}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: response.status, body: JSON.parse(response.body) };
  };
  const reloadEvents = async () => {
    const { body } = await api('GET', '/api/events?after=0'); // this supervisor's own, from memory
    return body.events.filter((event: { kind: string }) => event.kind === 'reload') as Array<{ reason: string; detail: Record<string, any> }>;
  };
  const appsServing = async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) seen.add(String((await request(`${proxy.url}/`)).headers['x-app']));
    return [...seen].sort();
  };

  test('an invalid file: exit 78 with every problem as check-config prints them, 422 from the API, nothing changes', async () => {
    writeConfig({ supervisor: { historyDays: 0 }, pools: { web: { concurrency: 'two' } } });
    const checked = await cli('check-config');
    assert.equal(checked.code, 1);
    assert.match(checked.stderr, /supervisor\.historyDays = 0: /);
    assert.match(checked.stderr, /pools\.web\.concurrency = "two": /);
    const reloaded = await cli('reload');
    assert.equal(reloaded.code, 78);
    assert.equal(reloaded.stderr, checked.stderr);
    assert.equal(reloaded.stdout, '');

    const { status, body } = await api('POST', '/api/reload');
    assert.equal(status, 422);
    assert.equal(`${body.error}\n`, checked.stderr);
    assert.equal(body.problems.length, 2);
    assert.deepEqual(await reloadEvents(), []);
    assert.deepEqual(await appsServing(), ['one']);
  });

  test('SIGHUP with an invalid file changes nothing and the supervisor keeps running', async () => {
    supervisor.kill('SIGHUP');
    assert.equal((await api('GET', '/healthz')).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 500)); // it has read the file by now
    assert.equal(supervisor.exitCode, null);
    assert.deepEqual(await reloadEvents(), []);
  });

  test('a valid file: exit 0, what each process applied and what needs a restart, and a fleet event', async () => {
    writeConfig({ supervisor: { historyDays: 3 }, worker: { cacheBytes: 1024 }, pools: { web: { targets: [apps[0].address, apps[1].address] } } });
    const { code, stdout, stderr } = await cli('reload');
    assert.equal(stderr, '');
    assert.equal(code, 0, stdout);
    const [supervisorPart, proxyPart] = stdout.split(/\n(?=proxy )/);
    assert.equal(
      supervisorPart,
      [
        'supervisor: 1 change applied, 1 not applied',
        '  applied:',
        '    supervisor.historyDays 14 -> 3',
        '  not applied (needs a restart or a roll):',
        '    worker.cacheBytes 33554432 -> 1024 (not applied: a worker reads it when it starts: roll the pools (npx switchyard roll <pool>))',
      ].join('\n'),
    );
    assert.match(proxyPart, new RegExp(`^proxy ${controlUrl}: \\d+ changes? applied`));
    assert.ok(proxyPart.includes(`pools.web.targets: +"${apps[1].address}"`), proxyPart);
    assert.deepEqual(await appsServing(), ['one', 'two'], 'the proxy routes to the new target');

    let events: Awaited<ReturnType<typeof reloadEvents>> = [];
    await waitFor(async () => (events = await reloadEvents()).length === 1, 'the reload event');
    const [event] = events;
    assert.match(event.reason, /^\d+ changes applied, 1 not applied, 1 of 1 proxy reloaded$/);
    assert.equal(event.detail.source, 'api');
    assert.ok(event.detail.changes.includes('supervisor.historyDays 14 -> 3'));
    assert.ok(event.detail.changes.includes(`pools.web.targets: +"${apps[1].address}"`));
    assert.deepEqual(event.detail.notApplied, ['worker.cacheBytes 33554432 -> 1024 (not applied: a worker reads it when it starts: roll the pools (npx switchyard roll <pool>))']);
    assert.deepEqual(event.detail.proxies, [`${controlUrl}: reloaded`]);
  });

  test('SIGHUP does the same', async () => {
    writeConfig({ supervisor: { historyDays: 5 }, worker: { cacheBytes: 1024 }, pools: { web: { targets: [apps[1].address] } } });
    supervisor.kill('SIGHUP');
    let events: Awaited<ReturnType<typeof reloadEvents>> = [];
    await waitFor(async () => (events = await reloadEvents()).length === 2, 'the SIGHUP reload event');
    assert.equal(events[1].detail.source, 'SIGHUP');
    assert.ok(events[1].detail.changes.includes('supervisor.historyDays 3 -> 5'), JSON.stringify(events[1]));
    assert.deepEqual(await appsServing(), ['two']);
  });

  test('a proxy that does not reload: the others still do, and the command exits 1 naming it', async () => {
    await proxy.stop();
    writeConfig({ supervisor: { historyDays: 6 } });
    const { code, stdout, stderr } = await cli('reload');
    assert.equal(code, 1);
    // worker.cacheBytes is 1024 in the file still, but what is in force is compared: it was never applied
    assert.match(stdout, /^supervisor: 1 change applied\n  applied:\n    supervisor.historyDays 5 -> 6\n/);
    assert.match(stdout, new RegExp(`\\nproxy ${controlUrl}: FAILED: .+\\n$`));
    assert.equal(stderr, 'the reload failed on 1 proxy\n');
  });
});
