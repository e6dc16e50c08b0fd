import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import WebSocket from 'ws';
import { HARNESS_TOKEN, login, startDashboardHarness, type DashboardHarness } from '../../helpers/dashboard-harness.ts';
import { sleep, waitFor } from '../../helpers/http.ts';

const bearer = { authorization: `Bearer ${HARNESS_TOKEN}` };

/** 101 when the upgrade is accepted (the socket is then closed), else the refusal's status. */
function upgradeStatus(url: string, headers: Record<string, string>, path = '/ws'): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}${path}`, { headers });
    socket.on('open', () => {
      socket.close();
      resolve(101);
    });
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('error', reject);
  });
}

interface Message {
  type: 'snapshot' | 'update';
  cursor: { sample: number; event: number; live: number };
  samples: unknown[];
  events: Array<{ kind: string; reason?: string }>;
}

/** An open dashboard socket that collects what it is sent, with arrival times. */
async function follow(url: string, headers: Record<string, string> = bearer) {
  const socket = new WebSocket(`${url.replace('http', 'ws')}/ws`, { headers });
  const received: Array<{ at: number; message: Message }> = [];
  socket.on('message', (data) => received.push({ at: Date.now(), message: JSON.parse(data.toString()) as Message }));
  await once(socket, 'open');
  return { socket, received };
}

function gcHeap(): number {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

describe('dashboard WebSocket', () => {
  let h: DashboardHarness;

  before(async () => {
    h = await startDashboardHarness({ dashboard: { live: { sampleMs: 200 } } });
  });
  after(async () => {
    await h?.close();
  });

  test('the upgrade needs the token or a session, and a session only from our own origin', async () => {
    const { cookie } = await login(h.url);
    const origin = h.url;
    assert.equal(await upgradeStatus(h.url, {}), 401, 'no credentials');
    assert.equal(await upgradeStatus(h.url, { origin }), 401, 'right origin, no credentials');
    assert.equal(await upgradeStatus(h.url, { authorization: 'Bearer wrong', origin }), 401, 'wrong token');
    assert.equal(await upgradeStatus(h.url, { cookie: 'switchyard_session=forged', origin }), 401, 'forged session');
    assert.equal(await upgradeStatus(h.url, { cookie, origin: 'http://evil.example' }), 403, 'session from another site');
    assert.equal(await upgradeStatus(h.url, { cookie, origin: `http://localhost:${h.port}` }), 403, 'same port, other host name');
    assert.equal(await upgradeStatus(h.url, { cookie }), 403, 'session without an Origin');
    assert.equal(await upgradeStatus(h.url, { ...bearer, origin: 'http://evil.example' }), 403, 'token, but a foreign page');
    assert.equal(await upgradeStatus(h.url, bearer, '/elsewhere'), 404);
    assert.equal(await upgradeStatus(h.url, { cookie, origin }), 101, 'our page');
    assert.equal(await upgradeStatus(h.url, bearer), 101, 'a script with the token');
  });

  test("logging out closes that session's sockets (4001), not others", async () => {
    const session = await login(h.url);
    const mine = await follow(h.url, { cookie: session.cookie, origin: h.url });
    const script = await follow(h.url);
    const closed = once(mine.socket, 'close');
    const logout = await fetch(`${h.url}/logout`, { method: 'POST', headers: { cookie: session.cookie, 'x-csrf-token': session.csrf } });
    assert.equal(logout.status, 204);
    const [code] = await closed;
    assert.equal(code, 4001);
    assert.equal(script.socket.readyState, WebSocket.OPEN);
    script.socket.close();
    assert.equal(await upgradeStatus(h.url, { cookie: session.cookie, origin: h.url }), 401, 'the cookie no longer opens a socket');
  });

  test('a snapshot on connect, then updates no more often than every 500 ms, with new events', async () => {
    const { socket, received } = await follow(h.url);
    await waitFor(() => received.length >= 4, 'a few messages', 5000);
    h.supervisor.events.record({ kind: 'config', reason: 'ws test marker' });
    await waitFor(() => received.some(({ message }) => message.events.some((event) => event.reason === 'ws test marker')), 'the event pushed', 3000);
    socket.close();
    assert.equal(received[0].message.type, 'snapshot');
    assert.ok(received.slice(1).every(({ message }) => message.type === 'update'));
    const gaps = received.slice(2).map(({ at }, i) => at - received[i + 1].at);
    assert.ok(gaps.every((gap) => gap >= 400), `pushes are coalesced to the 500 ms tick: ${gaps}`);
    const samples = received.slice(1).map(({ message }) => message.samples.length);
    assert.ok(samples.some((count) => count >= 2), `samples taken between pushes arrive together: ${samples}`);
  });

  test('50 dashboards at once all get the snapshot and updates', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => follow(h.url)));
    await waitFor(() => clients.every(({ received }) => received.length >= 3), 'every client got updates', 10_000);
    for (const { socket, received } of clients) {
      assert.equal(received[0].message.type, 'snapshot');
      assert.ok(received.at(-1)!.message.cursor.sample > received[0].message.cursor.sample);
      socket.close();
    }
  });

  test('a client that never reads does not grow the server: its socket buffer stays bounded', async (t) => {
    const { hub } = h;
    const limit = hub.options.maxBufferedBytes;
    // Big, frequent events make every update large, so the stalled socket fills within seconds.
    const filler = 'x'.repeat(16_384);
    const flood = setInterval(() => {
      for (let i = 0; i < 10; i++) h.supervisor.events.record({ kind: 'config', reason: filler });
    }, 20);
    try {
      await sleep(3000); // the supervisor's own memory of recent events (1000) fills up first
      const stalled = await follow(h.url);
      (stalled.socket as unknown as { _socket: Socket })._socket.pause();
      // The reader only counts (it shares this process's heap with the server).
      const reader = { socket: new WebSocket(`${h.url.replace('http', 'ws')}/ws`, { headers: bearer }), messages: 0, bytes: 0, largest: 0 };
      reader.socket.on('message', (data: Buffer) => {
        reader.messages++;
        reader.bytes += data.length;
        reader.largest = Math.max(reader.largest, data.length);
      });
      await once(reader.socket, 'open');
      const baseline = gcHeap();
      let maxBuffered = 0;
      const skippedBefore = hub.skipped;
      for (let i = 0; i < 40; i++) {
        await sleep(100);
        maxBuffered = Math.max(maxBuffered, hub.bufferedBytes());
      }
      const growth = gcHeap() - baseline;
      t.diagnostic(`pushed ${reader.bytes} bytes to the reader; stalled socket queued at most ${maxBuffered}; heap growth ${growth}`);
      assert.ok(hub.skipped > skippedBefore, 'the stalled client was skipped');
      assert.ok(maxBuffered <= limit + reader.largest, `queued ${maxBuffered} bytes, limit ${limit} + one message ${reader.largest}`);
      assert.ok(reader.bytes > 20 * 1048576, `the reading client got ${reader.bytes} bytes meanwhile`);
      assert.ok(growth < 8 * 1048576, `heap grew ${growth} bytes while ${reader.bytes} bytes were pushed`);
      assert.ok(reader.messages > 5, 'the reading client kept getting updates');
      stalled.socket.terminate();
      reader.socket.close();
    } finally {
      clearInterval(flood);
    }
  });
});

test('the API closes at once with dashboards still connected', async () => {
  const h = await startDashboardHarness();
  const clients = await Promise.all(Array.from({ length: 3 }, () => follow(h.url)));
  const started = Date.now();
  await h.close();
  assert.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms`);
  await Promise.all(clients.map(({ socket }) => (socket.readyState === WebSocket.CLOSED ? undefined : once(socket, 'close'))));
});
