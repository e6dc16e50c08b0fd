import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startApp, startProxyProcess, type AppProcess } from '../helpers/processes.ts';
import { request, sleep, waitFor } from '../helpers/http.ts';
import { readAtRate } from '../helpers/read-at-rate.ts';

const MB = 1024 * 1024;

/** Reads a response at about bytesPerSecond (test/helpers/read-at-rate.ts). */
function slowReader(url: string, bytesPerSecond: number) {
  let response: http.IncomingMessage | undefined;
  let reading: ReturnType<typeof readAtRate> | undefined;
  const req = http.get(url, { agent: false }, (res) => {
    response = res;
    reading = readAtRate(res, bytesPerSecond);
  });
  req.on('error', () => {});
  return {
    get received() {
      return reading?.bytes ?? 0;
    },
    get status() {
      return response?.statusCode;
    },
    stop() {
      reading?.stop();
      req.destroy();
    },
  };
}

describe('streaming with bounded buffers', () => {
  let app: AppProcess;
  const readers: Array<{ stop(): void }> = [];

  before(async () => {
    app = await startApp('streamer');
  });
  after(async () => {
    for (const reader of readers) reader.stop();
    await app.stop();
  });

  test('a 500 MB response to a client reading at 1 MB/s does not grow proxy memory beyond a few MB', async () => {
    // V8 grows its young generation (up to 16 MB per semi-space) under allocation pressure, more so
    // on a loaded machine; pinning it keeps that constant out of what we measure: buffering.
    const proxy = await startProxyProcess(
      { proxy: { host: '127.0.0.1', port: 0 }, pools: { web: { targets: [app.address] } }, lanes: laneToWeb() },
      { NODE_OPTIONS: '--max-semi-space-size=1' },
    );
    try {
      // Warm up with the same pattern, so the heap and allocator are at their steady size.
      for (let i = 0; i < 20; i++) await request(`${proxy.url}/big?bytes=${MB}`);
      const warmUp = slowReader(`${proxy.url}/big?bytes=${500 * MB}`, MB);
      readers.push(warmUp);
      await sleep(3000);
      warmUp.stop();
      await sleep(300);
      const baseline = proxy.rssBytes();
      const reader = slowReader(`${proxy.url}/big?bytes=${500 * MB}`, MB);
      readers.push(reader);
      let peak = baseline;
      for (let i = 0; i < 40; i++) {
        await sleep(100);
        peak = Math.max(peak, proxy.rssBytes());
      }
      assert.equal(reader.status, 200);
      assert.ok(reader.received > 2 * MB && reader.received < 20 * MB, `client read ${reader.received} bytes in 4 s`);
      const growth = peak - baseline;
      assert.ok(growth < 16 * MB, `proxy RSS grew by ${(growth / MB).toFixed(1)} MB while streaming 500 MB to a slow client`);
      reader.stop();
      const stats = async () => JSON.parse((await request(`http://${app.address}/stats`)).body);
      await waitFor(async () => (await stats()).inflight === 0, 'the worker let go of the abandoned response');
    } finally {
      await proxy.stop();
    }
  });

  test('a 500 MB upload to a worker reading at 1 MB/s flows at its pace and does not grow proxy memory beyond a few MB', async () => {
    const proxy = await startProxyProcess(
      { proxy: { host: '127.0.0.1', port: 0 }, pools: { web: { targets: [app.address] } }, lanes: laneToWeb() },
      { NODE_OPTIONS: '--max-semi-space-size=1' },
    );
    const uploads: Array<{ stop(): void }> = [];
    /** Offers `total` bytes as fast as the connection takes them, counting what it handed over. */
    const upload = (total: number) => {
      let sent = 0;
      const req = http.request(`${proxy.url}/slow-sink?bps=${MB}`, { method: 'POST', agent: false, headers: { 'content-length': String(total) } });
      req.on('error', () => {});
      const piece = Buffer.alloc(64 * 1024, 'u');
      const pump = () => {
        while (sent < total && !req.destroyed) {
          sent += piece.length;
          if (!req.write(piece)) return void req.once('drain', pump);
        }
      };
      pump();
      const handle = { get sent() { return sent; }, stop: () => req.destroy() };
      uploads.push(handle);
      return handle;
    };
    try {
      const warmUp = upload(500 * MB);
      await sleep(3000);
      warmUp.stop();
      await sleep(300);
      const baseline = proxy.rssBytes();
      const slow = upload(500 * MB);
      let peak = baseline;
      for (let i = 0; i < 40; i++) {
        await sleep(100);
        peak = Math.max(peak, proxy.rssBytes());
      }
      // What the client got rid of in 4 s: the worker's 4 MB plus the socket buffers on the way.
      assert.ok(slow.sent > 0 && slow.sent < 40 * MB, `the client handed over ${(slow.sent / MB).toFixed(1)} MB in 4 s`);
      const growth = peak - baseline;
      assert.ok(growth < 16 * MB, `proxy RSS grew by ${(growth / MB).toFixed(1)} MB while streaming an upload to a slow worker`);
    } finally {
      for (const handle of uploads) handle.stop();
      await proxy.stop();
    }
  });

  test('the response window frees the worker before a slow client has read its response', async () => {
    const windowed = await startProxyProcess({
      proxy: { host: '127.0.0.1', port: 0, streaming: { responseWindowBytes: 48 * MB } },
      pools: { web: { targets: [app.address], concurrency: 1, queue: { timeoutMs: 3000 } } },
      lanes: laneToWeb(),
    });
    // no spool either: only the window could free the worker
    const unwindowed = await startProxyProcess({
      proxy: { host: '127.0.0.1', port: 0, streaming: { responseWindowBytes: 16 * 1024 } },
      pools: { web: { targets: [app.address], concurrency: 1, queue: { timeoutMs: 1500 } } },
      lanes: { ...laneToWeb(), page: { spoolBytes: 0 } },
    });
    try {
      // A client that reads nothing of a 32 MB response: more than the kernel's socket buffers hold.
      const stalled = slowReader(`${windowed.url}/big?bytes=${32 * MB}`, 0);
      readers.push(stalled);
      await waitFor(() => stalled.status === 200, 'headers arrived');
      const next = await request(`${windowed.url}/`);
      assert.equal(next.status, 200, 'with a 48 MB window the worker was free for the next request');
      stalled.stop();

      // The same without a window or spool: the worker stays pinned by the stalled client, the next request times out.
      const pinned = slowReader(`${unwindowed.url}/big?bytes=${32 * MB}`, 0);
      readers.push(pinned);
      await waitFor(() => pinned.status === 200, 'headers arrived');
      const blocked = await request(`${unwindowed.url}/`);
      assert.equal(blocked.status, 503, 'without the window the single worker is held by the slow client');
      pinned.stop();
    } finally {
      await Promise.all([windowed.stop(), unwindowed.stop()]);
    }
  });
});

function laneToWeb() {
  return { clone: { pool: 'web' }, bot: { pool: 'web' } };
}
