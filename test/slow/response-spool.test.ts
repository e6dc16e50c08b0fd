// The response spool and the fair share under a hostile review (issue 18): bodies arrive whole and
// in order through direct writes, spool files, memory fallback and holds; spool and slots are
// released however a response ends; lane timeouts cut only what they should.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { startApp, type AppProcess } from '../helpers/processes.ts';
import { SmallTmpfs } from '../helpers/small-tmpfs.ts';
import { neverReads, request, settle, sleep, waitFor, type SimpleResponse } from '../helpers/http.ts';
import { startProxy, type StartedProxy } from '../../proxy/testing.ts';

const KB = 1024;
const MB = 1024 * 1024;

// ---- a worker in this process whose bodies are position-dependent, so a byte out of place shows ----
const PERIOD = randomBytes(1_000_003); // prime length: no chunk size lines up with it
const expectedAt = (offset: number, length: number): Buffer => {
  const out = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const at = (offset + filled) % PERIOD.length;
    const take = Math.min(length - filled, PERIOD.length - at);
    PERIOD.copy(out, filled, at, at + take);
    filled += take;
  }
  return out;
};

interface PatternWorker {
  address: string;
  inflight: number;
  /** responses in progress by their ?id=, to break on demand */
  live: Map<string, { die(): void; stall(): void; produced(): number }>;
  server: http.Server;
  close(): Promise<void>;
}

/**
 * /pattern?bytes=N: N position-dependent bytes in pieces of varying size, with backpressure.
 * &dieAfter=M: the worker's connection is destroyed after M bytes. &stallAfter=M: it stops after M
 * bytes and never ends. &piece=K: largest piece.
 */
async function startPatternWorker(): Promise<PatternWorker> {
  const worker: PatternWorker = { address: '', inflight: 0, live: new Map(), server: undefined!, close: async () => {} };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    if (url.pathname === '/_worker/health') return res.end('{}');
    worker.inflight++;
    res.on('close', () => worker.inflight--);
    const total = Number(url.searchParams.get('bytes') ?? MB);
    const dieAfter = Number(url.searchParams.get('dieAfter') ?? Infinity);
    const stallAfter = Number(url.searchParams.get('stallAfter') ?? Infinity);
    const maxPiece = Number(url.searchParams.get('piece') ?? 70_001);
    if (url.searchParams.has('chunked')) res.writeHead(200, { 'content-type': 'application/octet-stream' });
    else res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    let offset = 0;
    let seed = 7;
    let stalled = false;
    const id = url.searchParams.get('id');
    if (id) {
      worker.live.set(id, { die: () => req.socket.destroy(), stall: () => (stalled = true), produced: () => offset });
      res.on('close', () => worker.live.delete(id));
    }
    const pump = () => {
      while (offset < total) {
        if (offset >= dieAfter) return void req.socket.destroy();
        if (offset >= stallAfter || stalled) return; // never ends
        seed = (seed * 1103515245 + 12345) >>> 0;
        const length = Math.min(total - offset, 1 + (seed % maxPiece));
        const piece = expectedAt(offset, length);
        offset += length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  server.keepAliveTimeout = 5000;
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  worker.server = server;
  worker.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  worker.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return worker;
}

/** Checks a body against the pattern as it arrives; records the first offset that is wrong. */
class Verifier {
  offset = 0;
  firstMismatch: number | undefined;
  add(chunk: Buffer): void {
    if (this.firstMismatch === undefined && !chunk.equals(expectedAt(this.offset, chunk.length))) {
      const expected = expectedAt(this.offset, chunk.length);
      let index = 0;
      while (chunk[index] === expected[index]) index++;
      this.firstMismatch = this.offset + index;
    }
    this.offset += chunk.length;
  }
}

interface Outcome {
  status: number;
  bytes: number;
  complete: boolean;
  firstMismatch: number | undefined;
  error?: string;
}

/**
 * GETs `path`, reading with pauses: `schedule(i)` gives [readMs, pauseMs] for the i-th cycle.
 * Resolves when the response ends or errs, never rejects.
 */
function pausingGet(port: number, path: string, localAddress: string, schedule: (cycle: number) => [number, number], timeoutMs = 60_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const verifier = new Verifier();
    let status = 0;
    let settled = false;
    const finish = (complete: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, bytes: verifier.offset, complete, firstMismatch: verifier.firstMismatch, error });
    };
    const timer = setTimeout(() => {
      req.destroy();
      finish(false, 'client timeout');
    }, timeoutMs);
    const req = http.get({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      const length = Number(res.headers['content-length'] ?? NaN);
      res.on('data', (chunk: Buffer) => verifier.add(chunk));
      res.on('end', () => finish(Number.isNaN(length) ? res.complete : verifier.offset === length && res.complete));
      res.on('error', (error) => finish(false, error.message));
      res.on('aborted', () => finish(false, 'aborted'));
      let cycle = 0;
      const step = () => {
        if (settled) return;
        const [readMs, pauseMs] = schedule(cycle++);
        res.resume();
        setTimeout(() => {
          if (settled) return;
          res.pause();
          setTimeout(step, pauseMs);
        }, readMs);
      };
      step();
    });
    req.on('error', (error) => finish(false, error.message));
  });
}



describe('fair share review: spooled responses', () => {
  let worker: PatternWorker;
  const proxies: StartedProxy[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    worker = await startPatternWorker();
    process.on('unhandledRejection', onUnhandled);
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    for (const proxy of proxies) await proxy.close().catch(() => {});
    await worker.close();
  });

  const start = async (config: Record<string, unknown>) => {
    const proxy = await startProxy({ pools: { web: [worker.address] }, config });
    proxies.push(proxy);
    return proxy;
  };
  const spool = (proxy: StartedProxy) => proxy.proxy.state().responseSpool;
  const slotsHeld = (proxy: StartedProxy) => proxy.proxy.pools.get('web')!.upstreams.reduce((sum, upstream) => sum + upstream.inflight, 0);
  const settled = async (proxy: StartedProxy, what: string) => {
    await waitFor(() => spool(proxy).diskBytes === 0 && spool(proxy).clients === 0, `${what}: the response spool is released (${JSON.stringify(spool(proxy))})`);
    await waitFor(() => slotsHeld(proxy) === 0 && worker.inflight === 0, `${what}: no slot held (proxy ${slotsHeld(proxy)}, worker ${worker.inflight})`);
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  };

  test('a body read with many pauses arrives whole and in order through direct writes, spool and hold', async () => {
    const proxy = await start({
      proxy: { streaming: { responseWindowBytes: 16 * KB, minBytesPerSec: 0, sendTimeoutMs: 20_000 } },
      lanes: { page: { spoolBytes: 512 * KB } },
    });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, spool(proxy).diskBytes)), 5);
    try {
      const outcomes = await Promise.all([
        pausingGet(proxy.port, `/pattern?bytes=${12 * MB}`, '127.0.10.1', (cycle) => [cycle % 3 === 0 ? 40 : 3, 20 + ((cycle * 37) % 90)]),
        pausingGet(proxy.port, `/pattern?bytes=${6 * MB}&chunked=1&piece=3001`, '127.0.10.2', (cycle) => [1 + (cycle % 5), 10 + ((cycle * 53) % 60)]),
      ]);
      for (const outcome of outcomes) {
        assert.equal(outcome.firstMismatch, undefined, `first wrong byte at ${outcome.firstMismatch}`);
        assert.ok(outcome.complete, `the body ended whole: ${JSON.stringify(outcome)}`);
      }
      assert.ok(peak > 0, 'the spool was used');
      await settled(proxy, 'after whole responses');
    } finally {
      clearInterval(sampler);
    }
  });

  test('the spool directory vanishes (open fails): the response goes from memory, whole', async () => {
    const proxy = await start({
      proxy: { streaming: { responseWindowBytes: 16 * KB, minBytesPerSec: 0, sendTimeoutMs: 20_000 } },
      lanes: { page: { spoolBytes: 4 * MB } },
    });
    rmSync(proxy.config.proxy.streaming.spoolDir!, { recursive: true, force: true });
    const watch = watchSpool(proxy);
    const outcome = await pausingGet(proxy.port, `/pattern?bytes=${24 * MB}`, '127.0.10.3', (cycle) => (cycle === 0 ? [0, 600] : [5, 30 + (cycle % 4) * 10]));
    watch.stop();
    assert.ok(watch.seen.spells >= 1, 'a temp file was asked for');
    assert.equal(outcome.firstMismatch, undefined);
    assert.ok(outcome.complete, JSON.stringify(outcome));
    await settled(proxy, 'after a failed open');
  });

  for (const [name, act] of [
    ['the client leaves mid-spool', 'leave'],
    ['the worker dies mid-spool', 'die'],
    ['the worker stalls mid-spool past the lane timeout', 'stall'],
    ['the client stops reading (send timeout) mid-spool', 'wait'],
  ] as const) {
    test(`${name}: spool and slot are released`, async () => {
      const proxy = await start({
        proxy: { streaming: { responseWindowBytes: 16 * KB, minBytesPerSec: 0, sendTimeoutMs: act === 'wait' ? 1500 : 30_000 } },
        lanes: { page: { spoolBytes: 64 * MB, responseTimeoutMs: act === 'stall' ? 2000 : 30_000 } },
      });
      const id = `${act}-${Date.now()}`;
      const socket = neverReads(proxy.port, `/pattern?bytes=${40 * MB}&id=${id}`, '127.0.11.1');
      try {
        await waitFor(() => spool(proxy).diskBytes > MB, 'spooling');
        if (act === 'leave') socket.destroy();
        if (act === 'die') worker.live.get(id)!.die();
        if (act === 'stall') worker.live.get(id)!.stall();
        await settled(proxy, name);
      } finally {
        socket.destroy();
      }
    });
  }

  /** Samples the spool: its peak and how many times it went from empty to used. */
  const watchSpool = (proxy: StartedProxy) => {
    const seen = { peak: 0, spells: 0 };
    // every spell opens a temp file
    const store = (proxy.proxy as unknown as { responseSpool: { openTempFile(): Promise<unknown> } }).responseSpool;
    const open = store.openTempFile.bind(store);
    store.openTempFile = () => {
      seen.spells++;
      return open();
    };
    const timer = setInterval(() => (seen.peak = Math.max(seen.peak, spool(proxy).diskBytes)), 2);
    return { seen, stop: () => clearInterval(timer) };
  };

  test('a slow, stop-and-go reader of 48 MB: whole and in order across many spool spells and holds', async () => {
    const proxy = await start({
      proxy: { streaming: { responseWindowBytes: 16 * KB, minBytesPerSec: 0, sendTimeoutMs: 20_000 } },
      lanes: { page: { spoolBytes: 2 * MB } },
    });
    const watch = watchSpool(proxy);
    try {
      const outcome = await pausingGet(proxy.port, `/pattern?bytes=${48 * MB}&piece=20011`, '127.0.10.4', (cycle) => [1, 150 + ((cycle * 31) % 100)], 90_000);
      assert.equal(outcome.firstMismatch, undefined, `first wrong byte at ${outcome.firstMismatch}`);
      assert.ok(outcome.complete, JSON.stringify(outcome));
      assert.ok(watch.seen.spells >= 2, `the spool was used in ${watch.seen.spells} spells (peak ${watch.seen.peak})`);
      await settled(proxy, 'after a stop-and-go reader');
    } finally {
      watch.stop();
    }
  });

  test('the spool disk fills mid-response (ENOSPC): the rest goes from memory, whole and in order', async () => {
    const tmpfs = SmallTmpfs.mount(3 * MB);
    try {
      const proxy = await start({
        proxy: { streaming: { spoolDir: tmpfs.dir, responseWindowBytes: 16 * KB, minBytesPerSec: 0, sendTimeoutMs: 20_000 } },
        lanes: { page: { spoolBytes: 32 * MB } },
      });
      const watch = watchSpool(proxy);
      const outcomes = await Promise.all(
        ['127.0.10.5', '127.0.10.6'].map((address, index) =>
          pausingGet(proxy.port, `/pattern?bytes=${24 * MB}&piece=${30011 + index * 7000}`, address, (cycle) => [cycle < 3 ? 0 : 2, cycle < 3 ? 600 : 40 + ((cycle * 17) % 60)], 90_000),
        ),
      );
      watch.stop();
      for (const outcome of outcomes) {
        assert.equal(outcome.firstMismatch, undefined, `first wrong byte at ${outcome.firstMismatch}`);
        assert.ok(outcome.complete, JSON.stringify(outcome));
      }
      assert.ok(watch.seen.peak > 3 * MB, `more was reserved than the disk holds (peak ${watch.seen.peak}): the disk filled`);
      await settled(proxy, 'after ENOSPC');
    } finally {
      tmpfs.unmount();
    }
  });

  test("a response the worker finished into the spool is not cut by the lane's response timeout while the client reads it", async () => {
    const proxy = await start({
      proxy: { streaming: { responseWindowBytes: 16 * KB, minBytesPerSec: 0, sendTimeoutMs: 20_000 } },
      lanes: { page: { spoolBytes: 32 * MB, responseTimeoutMs: 800 } },
    });
    const outcome = await pausingGet(proxy.port, `/pattern?bytes=${16 * MB}`, '127.0.10.7', (cycle) => (cycle === 0 ? [0, 2500] : [50, 100]));
    assert.equal(outcome.firstMismatch, undefined);
    assert.ok(outcome.complete, JSON.stringify(outcome));
    await settled(proxy, 'after a slow read of a spooled response');
  });

  test("a worker's plain answer to an upgrade offer, read stop-and-go: whole and in order through the spool", async () => {
    const proxy = await start({
      proxy: { streaming: { responseWindowBytes: 16 * KB, minBytesPerSec: 0, sendTimeoutMs: 20_000 } },
      lanes: { page: { spoolBytes: 3 * MB } },
    });
    const total = 24 * MB;
    const watch = watchSpool(proxy);
    const verifier = new Verifier();
    const socket = net.connect({ port: proxy.port, host: '127.0.0.1', localAddress: '127.0.10.8' });
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    let headerText = '';
    socket.on('data', (chunk: Buffer) => {
      if (!headerText) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        headerText = head.subarray(0, end).toString('latin1');
        chunk = head.subarray(end + 4);
      }
      verifier.add(chunk);
    });
    socket.pause();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(`GET /pattern?bytes=${total} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    // the pace is set by this schedule, not by how fast the machine reads: 1 ms of reading, then a pause
    let cycle = 0;
    const step = () => {
      if (socket.destroyed) return;
      socket.resume();
      setTimeout(() => {
        socket.pause();
        stepTimer = setTimeout(step, 150 + ((cycle++ * 31) % 100));
      }, 1);
    };
    let stepTimer = setTimeout(step, 600);
    await Promise.race([closed, sleep(90_000)]);
    clearTimeout(stepTimer);
    watch.stop();
    assert.ok(watch.seen.spells >= 2, `the spool was used in ${watch.seen.spells} spells`);
    assert.match(headerText, /^HTTP\/1\.1 200/, headerText);
    assert.equal(verifier.firstMismatch, undefined, `first wrong byte at ${verifier.firstMismatch}`);
    assert.equal(verifier.offset, total);
    await settled(proxy, 'after an upgrade offer answered plainly');
  });

  test('min-rate cut while the worker is held past the spool share: spool and slot released', async () => {
    const proxy = await start({
      proxy: { streaming: { responseWindowBytes: 16 * KB, minBytesPerSec: 512 * KB, rateWindowMs: 400, sendTimeoutMs: 30_000 } },
      lanes: { page: { spoolBytes: 1 * MB } },
    });
    const socket = net.connect({ port: proxy.port, host: '127.0.0.1', localAddress: '127.0.11.2' });
    socket.on('error', () => {});
    socket.pause();
    socket.write(`GET /pattern?bytes=${64 * MB} HTTP/1.1\r\nHost: t\r\n\r\n`);
    const reading = setInterval(() => socket.read(4096), 50); // ~80 KB/s: progress, but below the minimum
    try {
      await waitFor(() => spool(proxy).diskBytes > 0, 'spooling');
      await settled(proxy, 'min-rate cut');
    } finally {
      clearInterval(reading);
      socket.destroy();
    }
  });
});

describe('fair share review: app-process worker', () => {
  let app: AppProcess;
  const proxies: StartedProxy[] = [];
  before(async () => {
    app = await startApp('review');
  });
  after(async () => {
    for (const proxy of proxies) await proxy.close().catch(() => {});
    await app.stop();
  });
  const start = async (config: Record<string, unknown>, targets = [app.address]) => {
    const proxy = await startProxy({ pools: { web: targets }, config });
    proxies.push(proxy);
    return proxy;
  };
  const appStats = async () => JSON.parse((await request(`http://${app.address}/stats`)).body);
  const slotsHeld = (proxy: StartedProxy) => proxy.proxy.pools.get('web')!.upstreams.reduce((sum, upstream) => sum + upstream.inflight, 0);

  test("a WebSocket open longer than its lane's response timeout is not cut", async () => {
    const proxy = await start({ lanes: { page: { responseTimeoutMs: 400 }, browser: { responseTimeoutMs: 400 } } });
    const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws`);
    let closedAt: number | undefined;
    socket.on('close', () => (closedAt = Date.now()));
    socket.on('error', () => {});
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const openedAt = Date.now();
    await sleep(1500);
    assert.equal(closedAt, undefined, `the tunnel was closed ${closedAt! - openedAt} ms after it opened`);
    const echoed = new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data))));
    socket.send('ping');
    assert.match(await echoed, /ping/);
    socket.close();
    await waitFor(() => slotsHeld(proxy) === 0, 'no slot held');
  });

  test('HEAD requests and cut responses leave no slot held', async () => {
    const proxy = await start({});
    for (let i = 0; i < 3; i++) {
      const head = await request(`${proxy.url}/big?bytes=${8 * MB}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
    }
    await waitFor(async () => slotsHeld(proxy) === 0 && (await appStats()).inflight === 0, 'no slot held after HEADs');
  });

  test('one client holds at most maxInFlight slots whatever it mixes: HEAD, pipelining, upgrade offers, many connections', async () => {
    const fresh = await startApp('review-cap');
    try {
      const proxy = await start({ pools: { web: { concurrency: 4, perClient: { maxInFlight: 1 } } } }, [fresh.address]);
      const A = '127.0.44.1';
      const raw = (payload: string) =>
        new Promise<void>((resolve) => {
          const socket = net.connect({ port: proxy.port, host: '127.0.0.1', localAddress: A });
          socket.on('error', () => resolve());
          socket.on('close', () => resolve());
          socket.on('data', () => {});
          socket.write(payload);
          setTimeout(() => socket.destroy(), 6000);
        });
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, slotsHeld(proxy))), 5);
      await Promise.all([
        settle(request(`${proxy.url}/slow?ms=200`, { localAddress: A })),
        settle(request(`${proxy.url}/slow?ms=200`, { localAddress: A, method: 'HEAD' })),
        raw('GET /slow?ms=200 HTTP/1.1\r\nHost: t\r\n\r\nGET /slow?ms=200 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'),
        raw('GET /slow?ms=200 HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'),
        raw('GET /slow?ms=200 HTTP/1.0\r\n\r\n'),
        settle(request(`${proxy.url}/slow?ms=200`, { localAddress: A, headers: { 'sec-fetch-dest': 'document' } })),
      ]);
      clearInterval(sampler);
      const stats = JSON.parse((await request(`http://${fresh.address}/stats`)).body);
      assert.equal(stats.maxInflight, 1, `the worker ran ${stats.maxInflight} of one client's requests at once`);
      assert.equal(peak, 1);
      await waitFor(() => slotsHeld(proxy) === 0, 'no slot held');
    } finally {
      await fresh.stop();
    }
  });

});
