// Replacing the proxy process (proxy/master.ts): a successor takes the listening sockets before its
// predecessor stops accepting, no request fails, in-flight responses finish in the old process,
// an idle keep-alive connection of the old one still gets its next answer, and a worker of
// concurrency 1 never sees two requests at once from the two processes together.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startApp, startProxyProcess, type AppProcess, type ProxyProcess } from '../helpers/processes.ts';
import { request } from '../helpers/http.ts';
import { runCli } from '../helpers/run-cli.ts';
import { freePort } from '../helpers/worker-harness.ts';
import path from 'node:path';

/** One raw keep-alive connection: a request, its answer, and the connection left open. */
class RawConnection {
  private readonly socket: net.Socket;
  private buffer = '';
  closed = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.socket.on('data', (data: string) => (this.buffer += data));
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('error', () => {});
  }

  /** Sends a GET and resolves with the status line and headers once the whole (small) answer is in. */
  async get(path: string): Promise<{ status: number; connection: string | undefined }> {
    this.buffer = '';
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`);
    for (let waited = 0; waited < 10_000; waited += 10) {
      const end = this.buffer.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(this.buffer);
      if (end >= 0 && length && this.buffer.length >= end + 4 + Number(length[1])) {
        return { status: Number(this.buffer.slice(9, 12)), connection: /\r\nconnection: ([^\r]+)/i.exec(this.buffer)?.[1]?.toLowerCase() };
      }
      if (this.closed) break;
      await sleep(10);
    }
    throw new Error(`no whole answer to ${path} (closed: ${this.closed}): ${JSON.stringify(this.buffer.slice(0, 200))}`);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Bounded load: `clients` keep-alive loops until stopped (at most `maxRequests` each); counts what failed. */
function keepLoading(url: string, clients: number, maxRequests: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const result = { ok: 0, failed: [] as string[] };
  let stopped = false;
  const loops = Array.from({ length: clients }, async (_, client) => {
    for (let i = 0; i < maxRequests && !stopped; i++) {
      try {
        const response = await request(`${url}/slow?ms=5&client=${client}`, { agent, timeoutMs: 30_000 });
        if (response.status === 200) result.ok++;
        else result.failed.push(`HTTP ${response.status}: ${response.body.slice(0, 80)}`);
      } catch (error) {
        result.failed.push((error as Error).message);
      }
    }
  });
  return {
    result,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}

async function waitForGeneration(proxy: ProxyProcess, generation: number): Promise<void> {
  for (let waited = 0; waited < 30_000; waited += 50) {
    if ((await proxy.state()).process.generation === generation) return;
    await sleep(50);
  }
  throw new Error(`generation ${generation} did not take over`);
}

async function waitForPredecessorExit(proxy: ProxyProcess, generation: number): Promise<any> {
  for (let waited = 0; waited < 30_000; waited += 100) {
    const info = (await proxy.state()).process;
    if (info.generation === generation && info.predecessor?.exited) return info;
    await sleep(100);
  }
  throw new Error(`generation ${generation}'s predecessor did not exit`);
}

describe('restart-proxy: replacing the proxy process', () => {
  let apps: AppProcess[];
  let proxy: ProxyProcess;
  before(async () => {
    apps = await Promise.all([startApp('r0'), startApp('r1')]);
    const controlPort = await freePort(); // the CLI finds the control API in the config file
    proxy = await startProxyProcess(
      {
        // idle connections outlive a slow successor start on a busy machine: only the replacement may close them
        proxy: { host: '127.0.0.1', port: 0, control: { port: controlPort }, shutdown: { graceMs: 20_000 }, clients: { page: { idleTimeoutMs: 30_000 } } },
        pools: { web: { targets: apps.map((app) => app.address), concurrency: 1, perClient: { maxInFlight: 0 } } },
        lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } },
      },
      {},
      { master: true },
    );
  });
  after(async () => {
    await proxy?.stop('SIGTERM');
    await Promise.all(apps.map((app) => app.stop()));
  });

  test('three replacements under load: no failed request, long responses finish, concurrency held', async () => {
    const first = (await proxy.state()).process;
    assert.deepEqual([first.generation, first.replaceable], [1, true]);
    const load = keepLoading(proxy.url, 4, 2000);
    const pids = new Set<number>([first.pid]);
    for (let round = 0; round < 3; round++) {
      const idle = new RawConnection(proxy.port);
      assert.equal((await idle.get('/slow?ms=1')).status, 200);
      const long = request(`${proxy.url}/big?bytes=${8 * 1024 * 1024}&ms=0`, { timeoutMs: 30_000 });
      const slow = request(`${proxy.url}/slow?ms=1500`, { timeoutMs: 30_000 });
      await sleep(100);
      const before = (await proxy.state()).process;
      if (round === 1) {
        proxy.child.kill('SIGUSR2'); // the same as the control API's POST /restart
      } else {
        const answer = await proxy.control('POST', '/restart');
        assert.equal(answer.status, 202, JSON.stringify(answer.body));
        assert.equal(answer.body.from.pid, before.pid);
        assert.equal(answer.body.to.generation, before.generation + 1);
      }
      await waitForGeneration(proxy, before.generation + 1);
      await sleep(300);
      // the old process keeps its idle connection open (closing it could race a request on its way)...
      assert.equal(idle.closed, false, `round ${round}: an idle keep-alive connection is not closed early`);
      // ...and gives its next request an answer that closes it
      const late = await idle.get('/slow?ms=1');
      assert.deepEqual(late, { status: 200, connection: 'close' });
      const after = await waitForPredecessorExit(proxy, before.generation + 1);
      assert.equal(after.predecessor.pid, before.pid);
      assert.equal(after.predecessor.exited.code, 0, 'the old process finished and exited on its own');
      assert.ok(!pids.has(after.pid), 'a new process serves');
      pids.add(after.pid);
      // started in the old process, finished there: whole
      const [longAnswer, slowAnswer] = await Promise.all([long, slow]);
      assert.equal(slowAnswer.status, 200);
      assert.equal(longAnswer.status, 200);
      assert.equal(Buffer.byteLength(longAnswer.body), 8 * 1024 * 1024);
      idle.destroy();
    }
    const result = await load.stop();
    assert.deepEqual(result.failed, [], `${result.failed.length} of ${result.ok + result.failed.length} requests failed`);
    assert.ok(result.ok > 20, `the load ran (${result.ok} requests)`);
    for (const app of apps) {
      const stats = JSON.parse((await request(`http://${app.address}/stats`)).body);
      assert.equal(stats.maxInflight, 1, `${stats.name} saw ${stats.maxInflight} requests at once from the two processes together`);
    }
  });

  const cli = (args: string[]) =>
    runCli(args, { SWITCHYARD_CONFIG: proxy.configFile, SWITCHYARD_DATA: path.dirname(proxy.configFile) }, { home: path.dirname(proxy.configFile), timeoutMs: 60_000 });

  test('npx switchyard restart-proxy follows the replacement to the old process\'s exit', async () => {
    const before = (await proxy.state()).process;
    const slow = request(`${proxy.url}/slow?ms=1500`, { timeoutMs: 30_000 });
    await sleep(100);
    const run = await cli(['restart-proxy']);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines[0], 'starting a new proxy process...');
    assert.match(lines[1], new RegExp(`^new proxy pid \\d+ \\(generation ${before.generation + 1}\\) listening after \\d+\\.\\d s; old pid ${before.pid} stopped accepting$`));
    assert.match(lines.at(-1)!, new RegExp(`^old pid ${before.pid} finished its requests and exited after \\d+\\.\\d s$`));
    assert.equal((await slow).status, 200);
    assert.equal((await proxy.state()).process.generation, before.generation + 1);
  });

  let goodConfig = '';
  test('a successor that cannot start leaves the running process serving', async () => {
    goodConfig = readFileSync(proxy.configFile, 'utf8');
    const before = (await proxy.state()).process;
    writeFileSync(proxy.configFile, 'proxy: [this is not a mapping\n');
    const answer = await proxy.control('POST', '/restart');
    assert.equal(answer.status, 409);
    assert.match(answer.body.error, /exited before it listened \(exit code 78\)/);
    const run = await cli(['restart-proxy']);
    assert.equal(run.code, 78, 'the CLI reads the same broken config: a config error');
    assert.equal((await request(`${proxy.url}/slow?ms=1`)).status, 200);
    const now = (await proxy.state()).process;
    assert.deepEqual([now.pid, now.generation, now.retiring], [before.pid, before.generation, false]);
  });

  test('a stop during a replacement lets the old process finish its requests', async () => {
    writeFileSync(proxy.configFile, goodConfig);
    const slow = request(`${proxy.url}/slow?ms=2000`, { timeoutMs: 30_000 });
    await sleep(200);
    const answer = await proxy.control('POST', '/restart');
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const code = await proxy.stop('SIGTERM');
    assert.equal((await slow).status, 200, 'the request in the retiring process finished before the stop');
    assert.equal(code, 0);
  });
});

test('restart-proxy: a proxy run without its master says it cannot be replaced', async () => {
  const app = await startApp('plain');
  const proxy = await startProxyProcess({ proxy: { host: '127.0.0.1', port: 0 }, pools: { web: { targets: [app.address] } }, lanes: { clone: { pool: 'web' }, bot: { pool: 'web' } } });
  try {
    const answer = await proxy.control('POST', '/restart');
    assert.equal(answer.status, 409);
    assert.match(answer.body.error, /without its master/);
    assert.equal((await proxy.state()).process.replaceable, false);
  } finally {
    await proxy.stop();
    await app.stop();
  }
});
