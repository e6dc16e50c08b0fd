import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { stringify } from 'yaml';
import { DEFAULT_RULES } from '../../lib/config.ts';
import { deepMerge, startProxy, type StartedProxy } from '../../proxy/testing.ts';
import { request, waitFor } from '../helpers/http.ts';
import { startApp, startProxyProcess, type AppProcess } from '../helpers/processes.ts';

const TOKEN = 'reload-test-token-1234';
const auth = { authorization: `Bearer ${TOKEN}` };
const ROBOT_RULE = { class: 'bot', any: [{ userAgent: '^robot-x' }] };

type Tree = Record<string, unknown>;

/** Writes the started config with `overrides` merged in (arrays replaced) to the proxy's file, then POST /reload. */
async function reload(started: StartedProxy, overrides: Tree): Promise<{ status: number; body: any }> {
  writeFileSync(started.configFile, JSON.stringify(deepMerge(started.configTree, overrides)));
  const response = await request(`http://127.0.0.1:${started.controlPort}/reload`, { method: 'POST', headers: auth });
  return { status: response.status, body: JSON.parse(response.body) };
}

async function appStats(app: AppProcess): Promise<{ inflight: number; served: number }> {
  return JSON.parse((await request(`http://${app.address}/stats`)).body);
}

async function proxyState(started: StartedProxy): Promise<any> {
  return JSON.parse((await request(`http://127.0.0.1:${started.controlPort}/state`, { headers: auth })).body);
}

/** A request on a keep-alive agent's one connection; resolves with the answer and the connection's local port. */
function onConnection(agent: http.Agent, url: string, headers: Record<string, string>): Promise<{ status: number; lane: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, lane: String(res.headers['x-switchyard-lane']), localPort: req.socket!.localPort! }));
    });
    req.on('error', reject);
  });
}

describe('config reload on a running proxy', () => {
  let apps: AppProcess[];
  const proxies: StartedProxy[] = [];
  const start = async (pools: Record<string, string[]>, config: Tree = {}) => {
    const started = await startProxy({ pools, config });
    proxies.push(started);
    return started;
  };

  before(async () => {
    process.env.SWITCHYARD_ADMIN_TOKEN = TOKEN;
    apps = await Promise.all([startApp('a'), startApp('b'), startApp('c')]);
  });
  after(async () => {
    delete process.env.SWITCHYARD_ADMIN_TOKEN;
    for (const started of proxies) await started.close();
    await Promise.all(apps.map((app) => app.stop()));
  });

  test('a request in flight on a worker the reload removes finishes with 200; the worker gets nothing new and is then closed', async () => {
    const [a, b] = apps;
    const started = await start({ web: [a.address] });
    const slow = request(`${started.url}/slow?ms=1500`);
    await waitFor(async () => (await appStats(a)).inflight === 1, 'the slow request reaches worker a');
    const servedBefore = (await appStats(a)).served;

    const reloaded = await reload(started, { pools: { web: { targets: [b.address] } } });
    assert.equal(reloaded.status, 200);
    assert.deepEqual(reloaded.body, { changes: [`pools.web.targets: +"${b.address}", -"${a.address}"`], notApplied: [] });
    assert.deepEqual((await proxyState(started)).retiredWorkers, ['web-0']);

    for (let i = 0; i < 3; i++) assert.equal((await request(`${started.url}/`)).headers['x-app'], 'b');
    const answer = await slow;
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'slow a\n');
    assert.equal((await appStats(a)).served, servedBefore);
    await waitFor(async () => (await proxyState(started)).retiredWorkers.length === 0, 'the removed worker is closed once it has finished');
    const workers = (await proxyState(started)).pools[0].workers;
    assert.deepEqual(workers.map((worker: { name: string; address: string }) => [worker.name, worker.address]), [['web-0', b.address]]);
  });

  test('a keep-alive connection stays open across a reload and its next request follows the new rules', async () => {
    const started = await start({ web: [apps[0].address] });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const headers = { 'user-agent': 'robot-x/1.0' };
      const first = await onConnection(agent, `${started.url}/`, headers);
      assert.deepEqual([first.status, first.lane], [200, 'page']);

      const reloaded = await reload(started, { classify: [ROBOT_RULE, ...DEFAULT_RULES] });
      assert.deepEqual(reloaded.body.changes, ['classify rules changed (3 -> 4 rules)']);

      const second = await onConnection(agent, `${started.url}/`, headers);
      assert.deepEqual([second.status, second.lane], [200, 'bot']);
      assert.equal(second.localPort, first.localPort, 'the same connection carried both requests');
    } finally {
      agent.destroy();
    }
  });

  test('an added worker gets traffic; a removed one finishes its request in flight and gets none after', async () => {
    const [a, b, c] = apps;
    const started = await start({ web: [a.address] });
    const added = await reload(started, { pools: { web: { targets: [a.address, b.address] } } });
    assert.deepEqual(added.body.changes, [`pools.web.targets: +"${b.address}"`]);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(String((await request(`${started.url}/`)).headers['x-app']));
    assert.deepEqual(seen, new Set(['a', 'b']));

    // round-robin: the two slow requests take one worker each
    const slow = [request(`${started.url}/slow?ms=1500`), request(`${started.url}/slow?ms=1500`)];
    await waitFor(async () => (await appStats(b)).inflight === 1 && (await appStats(a)).inflight === 1, 'one slow request on each worker');
    const bServed = (await appStats(b)).served;
    await reload(started, { pools: { web: { targets: [a.address, c.address] } } });
    for (let i = 0; i < 4; i++) assert.notEqual((await request(`${started.url}/`)).headers['x-app'], 'b');
    const answers = await Promise.all(slow);
    assert.deepEqual(answers.map((answer) => answer.status), [200, 200]);
    assert.deepEqual(answers.map((answer) => answer.body).sort(), ['slow a\n', 'slow b\n']);
    assert.equal((await appStats(b)).served, bServed);
    // a kept worker is the same one: its name did not change
    const workers = (await proxyState(started)).pools[0].workers.map((worker: { name: string; address: string }) => `${worker.name} ${worker.address}`);
    assert.deepEqual(workers, [`web-0 ${a.address}`, `web-1 ${c.address}`]);
  });

  test('a changed queue limit applies to the next request; a busy worker stays counted busy', async () => {
    const app = apps[2];
    const started = await start({ web: [app.address] }, { pools: { web: { queue: { max: 5 } } } });
    const busy = () => waitFor(async () => (await appStats(app)).inflight === 1, 'the worker is busy');
    const first = request(`${started.url}/slow?ms=800`);
    await busy();
    // reloaded while its one slot is taken: the worker is the same Upstream, still full, so the
    // next request must wait for it (a fresh one would send it a second request at once)
    assert.deepEqual((await reload(started, { pools: { web: { queue: { max: 0 } } } })).body.changes, ['pools.web.queue.max 5 -> 0']);
    const refused = await request(`${started.url}/`);
    assert.equal(refused.status, 503);
    assert.match(refused.body, /queue full/);
    assert.equal((await first).status, 200);

    assert.deepEqual((await reload(started, { pools: { web: { queue: { max: 5 } } } })).body.changes, ['pools.web.queue.max 0 -> 5']);
    const second = request(`${started.url}/slow?ms=800`);
    await busy();
    const queued = await request(`${started.url}/`);
    assert.equal(queued.status, 200);
    assert.equal((await second).status, 200);
    assert.equal(JSON.parse((await request(`http://${app.address}/stats`)).body).maxInflight, 1);
  });

  test('an invalid file is refused with its problems (422) and nothing changes', async () => {
    const started = await start({ web: [apps[0].address] });
    const refused = await reload(started, { proxy: { debugHeaders: false, limits: { maxBodyBytes: 'lots' } }, pools: { web: { queue: { maxx: 1 } } } });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.error, `invalid configuration in ${started.configFile}`);
    assert.equal(refused.body.problems.length, 2);
    assert.match(refused.body.problems.join('\n'), /proxy\.limits\.maxBodyBytes = "lots": /);
    assert.match(refused.body.problems.join('\n'), /unknown key pools\.web\.queue\.maxx/);
    // the valid change in the same file was not applied: debug headers still on
    const answer = await request(`${started.url}/`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['x-switchyard-worker'], 'web-0');

    writeFileSync(started.configFile, 'proxy: [unclosed');
    const syntax = await request(`http://127.0.0.1:${started.controlPort}/reload`, { method: 'POST', headers: auth });
    assert.equal(syntax.status, 422);
    assert.match(JSON.parse(syntax.body).problems[0], /YAML syntax error/);
    assert.equal((await request(`${started.url}/`)).headers['x-switchyard-worker'], 'web-0');
  });

  test('a listen-port change is reported as not applied, and the port stays', async () => {
    const started = await start({ web: [apps[0].address] });
    const free = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const reloaded = await reload(started, { proxy: { port: free, debugHeaders: false } });
    assert.equal(reloaded.status, 200);
    assert.deepEqual(reloaded.body.changes, ['proxy.debugHeaders true -> false']);
    assert.equal(reloaded.body.notApplied.length, 1);
    assert.match(reloaded.body.notApplied[0], new RegExp(`^proxy\\.port 0 -> ${free} \\(not applied: .*restart`));
    const answer = await request(`${started.url}/`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['x-switchyard-worker'], undefined);
    await assert.rejects(request(`http://127.0.0.1:${free}/`), /ECONNREFUSED/);
    // still the running value: the same file reports it again, and nothing else
    const again = await request(`http://127.0.0.1:${started.controlPort}/reload`, { method: 'POST', headers: auth });
    assert.deepEqual(JSON.parse(again.body), { changes: [], notApplied: reloaded.body.notApplied });
  });

  test('SIGHUP reloads a proxy process; a bad file does not stop it', async () => {
    const config = {
      proxy: { host: '127.0.0.1', port: 0 },
      pools: { web: { targets: [apps[0].address] } },
      lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } },
    };
    const proxy = await startProxyProcess(config, { SWITCHYARD_ADMIN_TOKEN: TOKEN });
    try {
      const robot = { headers: { 'user-agent': 'robot-x/1.0' } };
      assert.equal((await request(`${proxy.url}/`, robot)).headers['x-switchyard-lane'], 'page');
      let output = '';
      proxy.child.stdout!.on('data', (data: Buffer) => (output += data.toString()));
      writeFileSync(proxy.configFile, 'proxy: [unclosed');
      proxy.child.kill('SIGHUP');
      await waitFor(() => output.includes('config reload refused'), 'the bad file is refused');
      assert.match(output, /"problems":\[".*YAML syntax error/);
      writeFileSync(proxy.configFile, stringify({ ...config, classify: [ROBOT_RULE, ...DEFAULT_RULES] }));
      proxy.child.kill('SIGHUP');
      await waitFor(() => output.includes('"msg":"config reloaded"'), 'the good file is applied');
      assert.match(output, /"changes":\["classify rules changed \(3 -> 4 rules\)"\]/);
      assert.equal((await request(`${proxy.url}/`, robot)).headers['x-switchyard-lane'], 'bot');
      assert.equal(proxy.child.exitCode, null);
    } finally {
      await proxy.stop();
    }
  });
});
