import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startApp, startProxyProcess, type AppProcess } from '../helpers/processes.ts';
import { request, sleep, waitFor } from '../helpers/http.ts';
import { freePort } from '../helpers/worker-harness.ts';
import { SmallTmpfs } from '../helpers/small-tmpfs.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';
import { AppendFile } from '../../lib/append-file.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-access-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => path.join(dir, `run-${++files}`, 'access.log');

const linesOf = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(0, -1) : []);

async function linesWhen(file: string, count: number): Promise<string[]> {
  await waitFor(() => linesOf(file).length >= count, `${count} lines in ${file}`);
  return linesOf(file);
}

/** A logger whose JSON lines land in `lines`. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

// $remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
const TIME_LOCAL = String.raw`\d{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}`;
function combined(client: string, requestLine: string, status: number, bytes: number, referer: string, userAgent: string): RegExp {
  const quoted = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${quoted(client)} - - \\[${TIME_LOCAL}\\] "${quoted(requestLine)}" ${status} ${bytes} "${quoted(referer)}" "${quoted(userAgent)}"$`);
}

describe('access log', () => {
  let app: AppProcess;
  before(async () => {
    app = await startApp('logged');
  });
  after(() => app.stop());

  async function withProxy(config: Record<string, unknown>, run: (proxy: StartedProxy) => Promise<void>, pools: Record<string, string[]> = { web: [app.address] }) {
    const proxy = await startProxy({ pools, config });
    try {
      await run(proxy);
    } finally {
      await proxy.close();
    }
  }

  test('combined: nginx\'s line exactly, with the client X-Forwarded-For names, body bytes per response on a kept-alive connection, and escaping', async () => {
    const file = freshPath();
    await withProxy({ proxy: { accessLog: { path: file } } }, async (proxy) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        // 127.0.0.1 is a trusted proxy (the default), so the address it forwards for is the client
        const first = await request(`${proxy.url}/hello?x=1`, { agent, headers: { 'x-forwarded-for': '198.51.100.9', referer: 'http://example.com/page', 'user-agent': 'curl/8.5.0' } });
        const second = await request(`${proxy.url}/big?bytes=70000`, { agent, headers: { 'user-agent': 'say "hi"\tthere' } });
        assert.equal(first.status, 200);
        assert.equal(second.body.length, 70000);
        const lines = await linesWhen(file, 2);
        assert.equal(lines.length, 2);
        assert.match(lines[0], combined('198.51.100.9', 'GET /hello?x=1 HTTP/1.1', 200, Buffer.byteLength(first.body), 'http://example.com/page', 'curl/8.5.0'));
        assert.match(lines[1], combined('127.0.0.1', 'GET /big?bytes=70000 HTTP/1.1', 200, 70000, '-', 'say \\x22hi\\x22\\x09there'));
      } finally {
        agent.destroy();
      }
    });
  });

  test('the proxy\'s own answers: 502 (a worker refused), 503 (queue full), 499 (client gone), a 400 (bad Host), /healthz', async () => {
    const deadPort = await freePort();
    const file = freshPath();
    // bots' bodies stream to the worker as they arrive, so a failed send cannot be replayed: 502
    const config = { proxy: { accessLog: { path: file }, healthCheck: { intervalMs: 60_000 }, clients: { bot: { bodyBufferBytes: 0 } } }, pools: { web: { queue: { max: 0 } } } };
    await withProxy(
      config,
      async (proxy) => {
        const dead = proxy.proxy.pools.get('bot')!;
        await waitFor(() => dead.upstreams[0].state === 'down', 'the first health check found the dead worker');
        dead.setState(dead.upstreams[0], 'ready'); // believed alive, as right after a crash
        const refused = await request(`${proxy.url}/`, { method: 'POST', body: 'payload', headers: { 'user-agent': 'Jenkins/2.4' } });
        assert.equal(refused.status, 502);

        const holding = request(`${proxy.url}/slow?ms=1500`);
        await waitFor(() => proxy.proxy.snapshot().pools.find((pool) => pool.name === 'web')!.workers[0].inflight === 1, 'the one slot is taken');
        const full = await request(`${proxy.url}/queued`);
        assert.equal(full.status, 503);
        await holding;

        // the client takes the first bytes of a response still being produced, then leaves
        await new Promise<void>((resolve, reject) => {
          const req = http.get(`${proxy.url}/drip?ms=5000`, { agent: false }, (res) => res.once('data', () => (req.destroy(), resolve())));
          req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
        });
        const health = await request(`${proxy.url}/healthz`);
        const badHost = await request(`${proxy.url}/bad-host`, { headers: { host: 'bad/host' } });
        assert.equal(badHost.status, 400);

        const lines = await linesWhen(file, 6);
        const byUrl = (url: string) => lines.filter((line) => line.includes(` ${url} HTTP/1.1"`));
        assert.match(byUrl('/')[0], combined('127.0.0.1', 'POST / HTTP/1.1', 502, Buffer.byteLength(refused.body), '-', 'Jenkins/2.4'));
        assert.match(byUrl('/queued')[0], combined('127.0.0.1', 'GET /queued HTTP/1.1', 503, Buffer.byteLength(full.body), '-', '-'));
        const gone = byUrl('/drip?ms=5000')[0];
        assert.match(gone, /" 499 \d+ "-" "-"$/);
        assert.ok(Number(/ 499 (\d+) /.exec(gone)![1]) >= 1, 'counts the bytes the client was sent before it left');
        assert.match(byUrl('/healthz')[0], combined('127.0.0.1', 'GET /healthz HTTP/1.1', 200, Buffer.byteLength(health.body), '-', '-'));
        assert.match(byUrl('/bad-host')[0], combined('127.0.0.1', 'GET /bad-host HTTP/1.1', 400, Buffer.byteLength(badHost.body), '-', '-'));
      },
      { web: [app.address], bot: [`127.0.0.1:${deadPort}`] },
    );
  });

  test('json: lane, worker, queue wait, upstream time, bytes and retried, one object per line', async () => {
    const file = freshPath();
    await withProxy({ proxy: { accessLog: { path: file, format: 'json' } } }, async (proxy) => {
      // the worker takes one request at a time: the second waits in the queue for the first
      const [slow, queued] = await Promise.all([
        request(`${proxy.url}/slow?ms=400`, { headers: { 'user-agent': 'curl/8.5.0' } }),
        (async () => {
          await waitFor(() => proxy.proxy.snapshot().pools[0].workers[0].inflight === 1, 'the first has the slot');
          return request(`${proxy.url}/after`, { headers: { referer: 'http://example.com/' } });
        })(),
      ]);
      assert.equal(slow.status, 200);
      assert.equal(queued.status, 200);
      // a reset of the reused worker connection is retried once
      assert.equal((await request(`${proxy.url}/arm-reset`)).status, 200);
      const retried = await request(`${proxy.url}/again`);
      assert.equal(retried.status, 200);
      const css = await request(`${proxy.url}/_static/switchyard.css`);

      const lines = (await linesWhen(file, 5)).map((line) => JSON.parse(line));
      const byUrl = (url: string) => lines.find((line) => line.url === url);
      const first = byUrl('/slow?ms=400');
      assert.deepEqual(Object.keys(first), ['time', 'client', 'method', 'url', 'protocol', 'status', 'bytes', 'referer', 'userAgent', 'lane', 'worker', 'queueMs', 'upstreamMs', 'totalMs', 'retried', 'cloneCache']);
      assert.equal(first.cloneCache, null, 'not a clone-protocol request');
      assert.match(first.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/);
      assert.deepEqual(
        { client: first.client, method: first.method, protocol: first.protocol, status: first.status, bytes: first.bytes, referer: first.referer, userAgent: first.userAgent, lane: first.lane, worker: first.worker, queueMs: first.queueMs, retried: first.retried },
        { client: '127.0.0.1', method: 'GET', protocol: 'HTTP/1.1', status: 200, bytes: Buffer.byteLength(slow.body), referer: null, userAgent: 'curl/8.5.0', lane: 'page', worker: 'web-0', queueMs: 0, retried: false },
      );
      assert.ok(first.upstreamMs >= 300, `the worker waited 400 ms before its headers: upstreamMs ${first.upstreamMs}`);
      assert.ok(first.totalMs >= first.upstreamMs);
      const second = byUrl('/after');
      assert.ok(second.queueMs > 0, `the second request waited for the slot: queueMs ${second.queueMs}`);
      assert.ok(second.totalMs >= second.queueMs);
      assert.equal(second.referer, 'http://example.com/');
      assert.equal(byUrl('/again').retried, true);
      assert.equal(byUrl('/again').worker, 'web-0');
      const statik = byUrl('/_static/switchyard.css');
      assert.deepEqual(
        { lane: statik.lane, worker: statik.worker, queueMs: statik.queueMs, upstreamMs: statik.upstreamMs, bytes: statik.bytes },
        { lane: 'static', worker: null, queueMs: null, upstreamMs: null, bytes: Buffer.byteLength(css.body) },
      );
    });
  });

  test('enabled: false writes nothing', async () => {
    const file = freshPath();
    await withProxy({ proxy: { accessLog: { enabled: false, path: file } } }, async (proxy) => {
      for (let i = 0; i < 3; i++) assert.equal((await request(`${proxy.url}/quiet`)).status, 200);
    });
    assert.equal(existsSync(path.dirname(file)), false, 'not even its directory');
  });

  test('the default path is <data>/log/access.log', async () => {
    await withProxy({}, async (proxy) => {
      assert.equal((await request(`${proxy.url}/default`)).status, 200);
      const lines = await linesWhen(path.join(proxy.config.data, 'log', 'access.log'), 1);
      assert.match(lines[0], combined('127.0.0.1', 'GET /default HTTP/1.1', 200, Buffer.byteLength('hello from logged\n'), '-', '-'));
    });
  });

  test('a path that cannot be opened: requests are served, one warning, and a reopen once it can be picks up', async () => {
    const blocker = path.join(dir, 'not-a-directory');
    writeFileSync(blocker, '');
    const file = path.join(blocker, 'access.log');
    const { log, lines: logged } = capturingLogger();
    const proxy = await startProxy({ pools: { web: [app.address] }, config: { proxy: { accessLog: { path: file } } }, log });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await request(`${proxy.url}/unlogged`)).status, 200);
      await waitFor(() => logged.some((line) => String(line.msg).startsWith('access log: cannot open')), 'the open failure is logged');
      assert.equal(logged.filter((line) => String(line.msg).startsWith('access log: cannot open')).length, 1, 'once, not per request');
      rmSync(blocker);
      mkdirSync(blocker);
      proxy.proxy.reopenAccessLog();
      await waitFor(async () => {
        await request(`${proxy.url}/logged`);
        return linesOf(file).length > 0;
      }, 'lines reach the file once it can be opened');
      assert.ok(linesOf(file).every((line) => line.includes('"GET /logged HTTP/1.1" 200')));
    } finally {
      await proxy.close();
    }
  });

  test('copytruncate: lines after a truncation start at the new end (O_APPEND), no hole of zeros', async () => {
    const file = freshPath();
    await withProxy({ proxy: { accessLog: { path: file } } }, async (proxy) => {
      for (let i = 0; i < 5; i++) await request(`${proxy.url}/before`);
      await linesWhen(file, 5);
      truncateSync(file, 0);
      await request(`${proxy.url}/after`);
      await linesWhen(file, 1);
      const content = readFileSync(file);
      assert.equal(content.indexOf(0), -1, 'no NUL bytes');
      assert.match(content.toString(), /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/after HTTP\/1\.1" 200 \d+ "-" "-"\n$/);
    });
  });

  test('SIGUSR1 to the proxy process reopens the file after a rotation renamed it; no line is lost', async () => {
    const file = freshPath();
    const proxy = await startProxyProcess({ proxy: { host: '127.0.0.1', port: 0, accessLog: { path: file } }, pools: Object.fromEntries(['web', 'clone', 'bot'].map((pool) => [pool, { targets: [app.address] }])) });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(`${proxy.url}/one`)).status, 200);
      await linesWhen(file, 3);
      renameSync(file, `${file}.1`);
      assert.equal((await request(`${proxy.url}/two`)).status, 200); // still to the renamed file: it is open
      await linesWhen(`${file}.1`, 4);
      proxy.child.kill('SIGUSR1');
      let sent = 0;
      await waitFor(async () => {
        assert.equal((await request(`${proxy.url}/three`)).status, 200);
        sent++;
        return linesOf(file).length > 0;
      }, 'lines go to a new file at the path');
      assert.equal(await proxy.stop('SIGTERM'), 0);
      const rotated = linesOf(`${file}.1`);
      const current = linesOf(file);
      assert.deepEqual(rotated.slice(0, 4).map((line) => /"GET (\S+)/.exec(line)![1]), ['/one', '/one', '/one', '/two']);
      assert.equal(rotated.length + current.length, 4 + sent, 'every request has its line in one file or the other');
      assert.ok(current.every((line) => line.includes('"GET /three HTTP/1.1" 200')));
    } finally {
      await proxy.stop();
    }
  });

  test('a full disk: requests are served, a throttled warning, lines past the buffer bound dropped and counted, the rest written once there is room', async () => {
    const disk = SmallTmpfs.mount(1024 * 1024);
    try {
      const file = path.join(disk.dir, 'log', 'access.log');
      const { log, lines: logged } = capturingLogger();
      const proxy = await startProxy({ pools: { web: [app.address] }, config: { proxy: { accessLog: { path: file } } }, log });
      try {
        assert.equal((await request(`${proxy.url}/fits`)).status, 200);
        await linesWhen(file, 1);
        disk.fill();
        // long lines: a file's last page on tmpfs still has room for a few short ones
        const full = `/full?${'q'.repeat(2000)}`;
        for (let i = 0; i < 5; i++) assert.equal((await request(`${proxy.url}${full}`)).status, 200);
        await waitFor(() => logged.some((line) => line.msg === 'access log: write failed (retried with the next line)' && line.err === 'ENOSPC'), 'the failed write is logged');
        assert.equal(logged.filter((line) => String(line.msg).startsWith('access log: write failed')).length, 1, 'once a minute, not per line');
        disk.unfill();
        assert.equal((await request(`${proxy.url}/room`)).status, 200);
        const lines = await linesWhen(file, 7);
        assert.deepEqual(lines.map((line) => /"GET (\S+)/.exec(line)![1]), ['/fits', full, full, full, full, full, '/room']);
      } finally {
        await proxy.close();
      }

      // the bound: with the disk full, what waits for it stays under maxBufferBytes; the rest is counted
      disk.fill();
      const bounded = new AppendFile({ path: path.join(disk.dir, 'log', 'bounded.log'), label: 'test file', maxBufferBytes: 10_000, batchChars: 1000, flushMs: 60_000, retryOpenMs: 60_000, retireMs: 1000 }, pino({ level: 'silent' }));
      bounded.open();
      await sleep(50);
      const line = `${'x'.repeat(99)}\n`;
      for (let i = 0; i < 1000; i++) bounded.write(line); // handed to the stream ten lines at a time
      assert.ok(bounded.dropped >= 900 && bounded.dropped < 1000, `at most 100 lines of 100 bytes wait: ${bounded.dropped} dropped`);
      disk.unfill();
      bounded.write(line);
      await bounded.close(5000);
      assert.equal(linesOf(path.join(disk.dir, 'log', 'bounded.log')).length, 1001 - bounded.dropped, 'every line not counted as dropped is written');
    } finally {
      disk.unmount();
    }
  });
});
