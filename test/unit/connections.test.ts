import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { validateConfig } from '../../lib/config.ts';
import { ConnectionTracker, type TrackedConnection } from '../../proxy/connections.ts';

// ConnectionTracker (proxy/connections.ts) on real loopback socket pairs from an in-process
// net.Server. The clock is node:test's mocked Date, so idle timeouts are checked by passing the
// sweep a synthetic `now` and moving Date.now() with it (the sweep's close waits for setImmediate
// and re-checks against Date.now()); nothing waits in real time.

const T0 = 1_000_000;
const HEADERS_TIMEOUT_MS = 2000;

let listener: net.Server;
const opened: net.Socket[] = [];

before(async () => {
  listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
});

after(async () => {
  for (const socket of opened) socket.destroy();
  await new Promise((resolve) => listener.close(resolve));
});

interface Pair {
  /** the proxy's end: what the tracker is given */
  socket: net.Socket;
  /** the client's end */
  client: net.Socket;
}

/** A connected loopback pair; the server end reads (and drops) whatever the client sends. */
async function pair(): Promise<Pair> {
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  const [socket] = await accepted;
  socket.on('error', () => {});
  socket.on('data', () => {});
  opened.push(client, socket);
  return { socket, client };
}

type Clients = ReturnType<typeof validateConfig>['proxy']['clients'];

function clientsConfig(overrides: Record<string, unknown> = {}): Clients {
  return validateConfig({ data: '/tmp/unused', proxy: { clients: overrides } }, '(connections test)').proxy.clients;
}

function tracker(overrides: Record<string, unknown> = {}): ConnectionTracker {
  return new ConnectionTracker(clientsConfig(overrides), { headersTimeoutMs: HEADERS_TIMEOUT_MS });
}

/** Date.now() is T0 from here on, and moves only with t.mock.timers.tick. */
function mockClock(t: TestContext): void {
  t.mock.timers.enable({ apis: ['Date'], now: T0 });
}

/** The sweep closes on setImmediate: one turn of the loop. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs the idle sweep at `now` (Date.now() moved there too) and lets its close happen. */
async function sweepAt(t: TestContext, tracked: ConnectionTracker, now: number): Promise<void> {
  const behind = now - Date.now();
  if (behind > 0) t.mock.timers.tick(behind);
  tracked.closeExpiredIdle(now);
  await nextTurn();
}

/** Admits a pair (asserting it was admitted) and returns it with its tracked connection. */
async function admitted(tracked: ConnectionTracker, ip: string, options: { exempt?: boolean; trustedPeer?: boolean } = {}): Promise<Pair & { connection: TrackedConnection }> {
  const p = await pair();
  assert.equal(tracked.admit(p.socket, ip, options.exempt ?? false, options.trustedPeer ?? false), true, `${ip} was not admitted`);
  return { ...p, connection: tracked.get(p.socket)! };
}

/** A request that starts and, unless told otherwise, finishes: the connection's class is then `requestClass`. */
function serve(tracked: ConnectionTracker, connection: TrackedConnection, requestClass: Parameters<ConnectionTracker['classified']>[1] = 'page', finish = true): boolean {
  tracked.requestStarted(connection);
  const mustClose = tracked.classified(connection, requestClass);
  if (finish) tracked.requestFinished(connection);
  return mustClose;
}

// --- admission ---------------------------------------------------------------------------------

test('admit: an address at its limit is refused while all its connections are busy; other addresses still get in', async () => {
  const tracked = tracker({ maxConnectionsPerIp: 2 });
  const a1 = await admitted(tracked, '198.51.100.1');
  const a2 = await admitted(tracked, '198.51.100.1');
  tracked.requestStarted(a1.connection);
  tracked.requestStarted(a2.connection);

  const a3 = await pair();
  assert.equal(tracked.admit(a3.socket, '198.51.100.1', false, false), false, 'a third connection from one address was admitted over its limit');
  assert.equal(tracked.get(a3.socket), undefined);
  assert.equal(a1.socket.destroyed || a2.socket.destroyed, false, 'a busy connection was closed to make room');

  await admitted(tracked, '198.51.100.2');
  assert.equal(tracked.size, 3);
});

test("admit: at its limit, the address's connection idle longest gives way (not its first or last admitted, not another address's)", async (t) => {
  mockClock(t);
  const tracked = tracker({ maxConnectionsPerIp: 3 });
  const other = await admitted(tracked, '198.51.100.9'); // idle longest of all, but another address
  t.mock.timers.tick(10);
  const first = await admitted(tracked, '198.51.100.1');
  const second = await admitted(tracked, '198.51.100.1');
  const third = await admitted(tracked, '198.51.100.1');
  t.mock.timers.tick(10);
  serve(tracked, second.connection); // idle since T0 + 20: the longest of its address
  t.mock.timers.tick(10);
  serve(tracked, third.connection); // T0 + 30
  t.mock.timers.tick(10);
  serve(tracked, first.connection); // T0 + 40

  const fourth = await admitted(tracked, '198.51.100.1');
  assert.equal(second.socket.destroyed, true, 'the connection idle longest was not the one closed');
  assert.equal(tracked.get(second.socket), undefined);
  assert.equal(first.socket.destroyed || third.socket.destroyed, false, 'a connection idle for less time was closed');
  assert.equal(other.socket.destroyed, false, "another address's idle connection was closed for this one");
  assert.equal(tracked.get(fourth.socket)?.ip, '198.51.100.1');
  assert.equal(tracked.size, 4);
});

test('admit: an exempt peer (a trusted load balancer) passes the per-address limit, and trustedPeer is recorded', async () => {
  const tracked = tracker({ maxConnectionsPerIp: 1 });
  const lb1 = await admitted(tracked, '127.0.0.1', { exempt: true, trustedPeer: true });
  tracked.requestStarted(lb1.connection);
  const lb2 = await admitted(tracked, '127.0.0.1', { exempt: true, trustedPeer: true });
  assert.equal(lb1.socket.destroyed, false);
  assert.equal(lb2.connection.trustedPeer, true);
  assert.equal(lb2.connection.exempt, true);

  const plain = await admitted(tracked, '198.51.100.1');
  tracked.requestStarted(plain.connection);
  const refused = await pair();
  assert.equal(tracked.admit(refused.socket, '198.51.100.1', false, false), false);
  assert.equal(plain.connection.trustedPeer, false);
});

test('admit: maxConnectionsPerIp 0 means no per-address limit', async () => {
  const tracked = tracker({ maxConnectionsPerIp: 0 });
  for (let i = 0; i < 4; i++) tracked.requestStarted((await admitted(tracked, '198.51.100.1')).connection);
  assert.equal(tracked.size, 4);
});

test('admit: at maxConnections in all, the idle-longest connection of anyone gives way; with none idle, even an exempt peer is refused', async (t) => {
  mockClock(t);
  const tracked = tracker({ maxConnections: 3, maxConnectionsPerIp: 0 });
  const a = await admitted(tracked, '198.51.100.1');
  t.mock.timers.tick(10);
  const b = await admitted(tracked, '198.51.100.2');
  t.mock.timers.tick(10);
  const c = await admitted(tracked, '198.51.100.3');
  tracked.requestStarted(a.connection);
  tracked.requestStarted(c.connection);

  const d = await admitted(tracked, '198.51.100.4');
  assert.equal(b.socket.destroyed, true, 'the only idle connection did not give way');
  assert.equal(a.socket.destroyed || c.socket.destroyed, false);
  tracked.requestStarted(d.connection);
  assert.equal(tracked.size, 3);

  const e = await pair();
  assert.equal(tracked.admit(e.socket, '127.0.0.1', true, true), false, 'admitted past maxConnections with nothing idle');
  assert.equal(tracked.size, 3);
});

test('admit: a connection whose socket closes is forgotten, and its place is free again', async () => {
  const tracked = tracker({ maxConnectionsPerIp: 1 });
  const a = await admitted(tracked, '198.51.100.1');
  tracked.requestStarted(a.connection);
  a.client.destroy();
  await once(a.socket, 'close');
  assert.equal(tracked.get(a.socket), undefined);
  assert.equal(tracked.size, 0);
  await admitted(tracked, '198.51.100.1');
});

// --- idle timeouts -------------------------------------------------------------------------------

test('idle: each class has its own idle timeout, counted from the end of the last response', async (t) => {
  mockClock(t);
  const tracked = tracker({ page: { idleTimeoutMs: 5000 }, clone: { idleTimeoutMs: 15_000 } });
  const fresh = await admitted(tracked, '198.51.100.1'); // no request yet: counts as page
  const page = await admitted(tracked, '198.51.100.2');
  const clone = await admitted(tracked, '198.51.100.3');
  t.mock.timers.tick(1000);
  serve(tracked, page.connection, 'page');
  serve(tracked, clone.connection, 'clone');
  // page went idle at T0 + 1000; the new connection at T0

  await sweepAt(t, tracked, T0 + 4999);
  assert.equal(fresh.socket.destroyed, false, 'closed before its idle timeout');
  await sweepAt(t, tracked, T0 + 5000);
  assert.equal(fresh.socket.destroyed, true, 'a new connection idle for the page timeout was not closed');
  assert.equal(page.socket.destroyed, false, 'the idle time was not counted from the last response');
  await sweepAt(t, tracked, T0 + 6000);
  assert.equal(page.socket.destroyed, true);
  assert.equal(clone.socket.destroyed, false, "a clone connection was closed at the page class's timeout");
  await sweepAt(t, tracked, T0 + 15_999);
  assert.equal(clone.socket.destroyed, false);
  await sweepAt(t, tracked, T0 + 16_000);
  assert.equal(clone.socket.destroyed, true, "a clone connection outlived its class's idle timeout");
  assert.equal(tracked.counts().total, 0);
  assert.equal(tracked.counts().idleListed, 0);
});

test('idle: a connection with a request in flight, or upgraded, is never idle-closed', async (t) => {
  mockClock(t);
  const tracked = tracker({ page: { idleTimeoutMs: 1000 } });
  const busy = await admitted(tracked, '198.51.100.1');
  const tunnel = await admitted(tracked, '198.51.100.2');
  tracked.requestStarted(busy.connection);
  tracked.requestStarted(tunnel.connection);
  tracked.requestFinished(tunnel.connection);
  tracked.upgraded(tunnel.socket);
  await sweepAt(t, tracked, T0 + 60_000);
  assert.equal(busy.socket.destroyed, false, 'a connection with a request in flight was idle-closed');
  assert.equal(tunnel.socket.destroyed, false, 'an upgraded connection was idle-closed');
});

test('idle: bytes of a next request spare the connection for a headers timeout, then it closes', async (t) => {
  mockClock(t);
  const tracked = tracker({ page: { idleTimeoutMs: 1000 } });
  const a = await admitted(tracked, '198.51.100.1');
  const quiet = await admitted(tracked, '198.51.100.2');
  a.client.write('GET / HT'); // the start of a request, never finished
  while (a.socket.bytesRead === 0) await nextTurn();

  await sweepAt(t, tracked, T0 + 1000);
  assert.equal(quiet.socket.destroyed, true);
  assert.equal(a.socket.destroyed, false, 'a connection with a request on its way was closed as idle');
  assert.equal(a.connection.unparsedSince, T0 + 1000);
  await sweepAt(t, tracked, T0 + 1000 + HEADERS_TIMEOUT_MS - 1);
  assert.equal(a.socket.destroyed, false);
  await sweepAt(t, tracked, T0 + 1000 + HEADERS_TIMEOUT_MS);
  assert.equal(a.socket.destroyed, true, 'bytes that made no request for a headers timeout kept the connection open');
});

test('idle: a request that starts clears the unparsed-bytes mark', async (t) => {
  mockClock(t);
  const tracked = tracker({ page: { idleTimeoutMs: 1000 } });
  const a = await admitted(tracked, '198.51.100.1');
  a.client.write('GET / HTTP/1.1\r\n');
  while (a.socket.bytesRead === 0) await nextTurn();
  await sweepAt(t, tracked, T0 + 1000);
  assert.equal(a.connection.unparsedSince, T0 + 1000);
  tracked.requestStarted(a.connection);
  assert.equal(a.connection.unparsedSince, undefined);
  tracked.requestFinished(a.connection); // idle again since T0 + 1000, its bytes now counted
  await sweepAt(t, tracked, T0 + 1999);
  assert.equal(a.socket.destroyed, false);
  await sweepAt(t, tracked, T0 + 2000);
  assert.equal(a.socket.destroyed, true);
});

test('overload: at overload.connections, idle connections close after overload.idleTimeoutMs instead (never later than their own)', async (t) => {
  mockClock(t);
  const tracked = tracker({ page: { idleTimeoutMs: 5000 }, clone: { idleTimeoutMs: 500 }, overload: { connections: 4, idleTimeoutMs: 1000 } });
  const a = await admitted(tracked, '198.51.100.1');
  const b = await admitted(tracked, '198.51.100.2');
  const busy = await admitted(tracked, '198.51.100.3');
  tracked.requestStarted(busy.connection);
  assert.equal(tracked.overloaded, false);
  await sweepAt(t, tracked, T0 + 1000);
  assert.equal(a.socket.destroyed || b.socket.destroyed, false, 'closed early without overload');
  assert.equal(tracked.counts().overloaded, false);

  const clone = await admitted(tracked, '198.51.100.4');
  serve(tracked, clone.connection, 'clone'); // idle since T0 + 1000, its own timeout 500
  assert.equal(tracked.overloaded, true);
  assert.equal(tracked.counts().overloaded, true);
  tracked.requestStarted(b.connection);
  await sweepAt(t, tracked, T0 + 1499);
  assert.equal(a.socket.destroyed, true, 'an idle connection outlived the overload idle timeout');
  assert.equal(b.socket.destroyed || busy.socket.destroyed, false, 'a busy connection was closed under overload');
  assert.equal(clone.socket.destroyed, false);
  assert.equal(tracked.size, 3);

  // below the mark again: each class's own timeout
  assert.equal(tracked.overloaded, false);
  tracked.requestFinished(b.connection); // idle since T0 + 1499
  await sweepAt(t, tracked, T0 + 1500);
  assert.equal(clone.socket.destroyed, true);
  await sweepAt(t, tracked, T0 + 1499 + 4999);
  assert.equal(b.socket.destroyed, false, 'the overload idle timeout still applied after the overload ended');
  await sweepAt(t, tracked, T0 + 1499 + 5000);
  assert.equal(b.socket.destroyed, true);
});

test('overload: a class timeout shorter than the overload one stays as it is', async (t) => {
  mockClock(t);
  const tracked = tracker({ clone: { idleTimeoutMs: 500 }, overload: { connections: 2, idleTimeoutMs: 1000 } });
  const busy = await admitted(tracked, '198.51.100.1');
  tracked.requestStarted(busy.connection);
  const clone = await admitted(tracked, '198.51.100.2');
  serve(tracked, clone.connection, 'clone');
  assert.equal(tracked.overloaded, true);
  await sweepAt(t, tracked, T0 + 499);
  assert.equal(clone.socket.destroyed, false);
  await sweepAt(t, tracked, T0 + 500);
  assert.equal(clone.socket.destroyed, true, 'overload lengthened a class timeout shorter than its own');
});

// --- pipelining ------------------------------------------------------------------------------------

test('turns: pipelined requests run one at a time, in order; past maxPipelined waiting, one is refused', async () => {
  const tracked = tracker({ maxPipelined: 2 });
  const { connection } = await admitted(tracked, '198.51.100.1');
  const ran: string[] = [];
  const handle = (name: string) => () => {
    ran.push(name);
    tracked.requestStarted(connection);
  };

  assert.equal(tracked.inTurn(connection, handle('first')), true);
  assert.deepEqual(ran, ['first'], 'a request on an idle connection did not run at once');
  assert.equal(tracked.inTurn(connection, handle('second')), true);
  assert.equal(tracked.inTurn(connection, handle('third')), true);
  assert.deepEqual(ran, ['first'], 'a pipelined request ran while another was in flight');
  assert.equal(tracked.inTurn(connection, handle('fourth')), false, 'more than maxPipelined were queued');
  assert.equal(connection.waiting.length, 2);

  tracked.requestFinished(connection);
  assert.deepEqual(ran, ['first', 'second']);
  assert.equal(tracked.counts().idleListed, 0, 'a connection handing over to its next request went on the idle list');
  tracked.requestFinished(connection);
  assert.deepEqual(ran, ['first', 'second', 'third']);
  tracked.requestFinished(connection);
  assert.equal(connection.active, 0);
  assert.equal(tracked.counts().idleListed, 1);
  assert.equal(tracked.inTurn(connection, handle('fifth')), true);
  assert.deepEqual(ran, ['first', 'second', 'third', 'fifth']);
});

test('turns: with no tracked connection the request runs at once; finishing one that never started is a no-op', () => {
  const tracked = tracker();
  let ran = 0;
  assert.equal(tracked.inTurn(undefined, () => ran++), true);
  assert.equal(ran, 1);
  tracked.requestStarted(undefined);
  tracked.requestFinished(undefined);
  assert.equal(tracked.classified(undefined, 'page'), true, 'an untracked connection was kept alive');
});

test('turns: maxPipelined 0 refuses any request behind one in flight', async () => {
  const tracked = tracker({ maxPipelined: 0 });
  const { connection } = await admitted(tracked, '198.51.100.1');
  tracked.requestStarted(connection);
  assert.equal(tracked.inTurn(connection, () => assert.fail('ran out of turn')), false);
});

test('closeWhenAnswered: nothing owed, false (the caller closes); owed, the connection closes after the last answer', async () => {
  const tracked = tracker();
  const idle = await admitted(tracked, '198.51.100.1');
  assert.equal(tracked.closeWhenAnswered(idle.connection), false);
  assert.equal(idle.socket.destroyed, false);

  const { socket, connection } = await admitted(tracked, '198.51.100.2');
  let secondRan = false;
  tracked.requestStarted(connection);
  tracked.inTurn(connection, () => {
    secondRan = true;
    tracked.requestStarted(connection);
  });
  assert.equal(tracked.closeWhenAnswered(connection), true);
  tracked.requestFinished(connection);
  assert.equal(secondRan, true, 'a request owed an answer was dropped');
  assert.equal(socket.destroyed, false, 'closed before the requests owed were answered');
  tracked.requestFinished(connection);
  assert.equal(socket.destroyed, true, 'the connection stayed open after its last owed answer');
  assert.equal(tracked.get(socket), undefined);
  assert.equal(tracked.counts().idleListed, 1, 'only the other idle connection is listed');
});

// --- keep-alive request limits ----------------------------------------------------------------------

test("classified: the connection must close at its class's maxRequestsPerSocket (0: never)", async () => {
  const tracked = tracker({ page: { maxRequestsPerSocket: 3 }, clone: { maxRequestsPerSocket: 0 }, bot: { maxRequestsPerSocket: 1 } });
  const page = await admitted(tracked, '198.51.100.1');
  assert.deepEqual([serve(tracked, page.connection), serve(tracked, page.connection), serve(tracked, page.connection)], [false, false, true]);

  const clone = await admitted(tracked, '198.51.100.2');
  for (let i = 0; i < 200; i++) assert.equal(serve(tracked, clone.connection, 'clone'), false, `request ${i + 1} of an unlimited class closed`);

  // the limit is the class of the request being classified, counting every request before it
  const mixed = await admitted(tracked, '198.51.100.3');
  assert.equal(serve(tracked, mixed.connection, 'clone'), false);
  assert.equal(serve(tracked, mixed.connection, 'bot'), true);
  assert.equal(mixed.connection.requestClass, 'bot');
});

// --- upgrades, counts, shutdown ---------------------------------------------------------------------

test('counts: per class, active (in flight or upgraded) and idle; total and idle list', async () => {
  const tracked = tracker();
  const fresh = await admitted(tracked, '198.51.100.1');
  const busyClone = await admitted(tracked, '198.51.100.2');
  serve(tracked, busyClone.connection, 'clone', false);
  const idleBot = await admitted(tracked, '198.51.100.3');
  serve(tracked, idleBot.connection, 'bot');
  const tunnel = await admitted(tracked, '198.51.100.4');
  serve(tracked, tunnel.connection, 'browser');
  tracked.upgraded(tunnel.socket);
  tracked.upgraded(new net.Socket()); // never admitted: ignored

  const counts = tracked.counts();
  assert.equal(counts.total, 4);
  assert.equal(counts.idleListed, 2, 'the idle list is not the idle connections (a busy or upgraded one listed?)');
  assert.equal(counts.overloaded, false);
  assert.deepEqual(counts.byClass, {
    static: { active: 0, idle: 0 },
    browser: { active: 1, idle: 0 },
    page: { active: 0, idle: 1 },
    clone: { active: 1, idle: 0 },
    bot: { active: 0, idle: 1 },
  });
  assert.equal(fresh.connection.requestClass, 'page', 'a new connection does not count as page');
});

test('idle list: a connection that closed is not listed again when its response ends later (the leak)', async (t) => {
  mockClock(t);
  const tracked = tracker();
  const a = await admitted(tracked, '198.51.100.1');
  const b = await admitted(tracked, '198.51.100.2');
  tracked.requestStarted(a.connection);
  tracked.requestStarted(b.connection);
  assert.equal(tracked.counts().idleListed, 0);

  a.client.destroy(); // the client leaves mid-response...
  await once(a.socket, 'close');
  tracked.requestFinished(a.connection); // ...and the response's close comes after the socket's
  b.socket.destroy(); // the proxy cuts one itself
  await once(b.socket, 'close');
  tracked.requestFinished(b.connection);

  assert.deepEqual({ total: tracked.counts().total, idleListed: tracked.counts().idleListed }, { total: 0, idleListed: 0 });
  // many rounds of it stay bounded
  for (let i = 0; i < 20; i++) {
    const c = await admitted(tracked, '198.51.100.3');
    tracked.requestStarted(c.connection);
    c.client.destroy();
    await once(c.socket, 'close');
    tracked.requestFinished(c.connection);
  }
  assert.equal(tracked.counts().idleListed, 0, 'closed connections stay on the idle list');
  await sweepAt(t, tracked, T0 + 60_000);
  assert.equal(tracked.counts().idleListed, 0);
});

test('beginShutdown: idle connections close now, busy ones when their response ends, tunnels stay; destroyAll ends the rest', async () => {
  const tracked = tracker();
  const idle = await admitted(tracked, '198.51.100.1');
  const busy = await admitted(tracked, '198.51.100.2');
  const pipelined = await admitted(tracked, '198.51.100.3');
  const tunnel = await admitted(tracked, '198.51.100.4');
  tracked.requestStarted(busy.connection);
  tracked.requestStarted(pipelined.connection);
  let nextRan = false;
  tracked.inTurn(pipelined.connection, () => {
    nextRan = true;
    tracked.requestStarted(pipelined.connection);
  });
  serve(tracked, tunnel.connection);
  tracked.upgraded(tunnel.socket);

  tracked.beginShutdown();
  assert.equal(idle.socket.destroyed, true, 'an idle connection outlived the start of shutdown');
  assert.equal(busy.socket.destroyed, false, 'a connection was cut mid-response');
  assert.equal(tunnel.socket.destroyed, false);
  assert.equal(tracked.classified(busy.connection, 'page'), true, 'a request during shutdown kept its connection alive');

  tracked.requestFinished(busy.connection);
  assert.equal(busy.socket.destroyed, true, 'a connection stayed open after its last response in shutdown');
  tracked.requestFinished(pipelined.connection);
  assert.equal(nextRan, true, 'a pipelined request already received was dropped at shutdown');
  assert.equal(pipelined.socket.destroyed, false);
  tracked.requestFinished(pipelined.connection);
  assert.equal(pipelined.socket.destroyed, true);

  tracked.destroyAll();
  assert.equal(tunnel.socket.destroyed, true);
  await once(tunnel.socket, 'close');
  assert.equal(tracked.size, 0);
});

test('beginShutdown: the sweep closes connections that go idle later at once, without their timeout', async (t) => {
  mockClock(t);
  const tracked = tracker({ page: { idleTimeoutMs: 60_000 } });
  const a = await admitted(tracked, '198.51.100.1');
  a.client.write('GET / HT');
  while (a.socket.bytesRead === 0) await nextTurn();
  tracked.beginShutdown(); // bytes on their way: not idle yet
  assert.equal(a.socket.destroyed, false);
  await sweepAt(t, tracked, T0 + 1);
  assert.equal(a.socket.destroyed, false);
  await sweepAt(t, tracked, T0 + 1 + HEADERS_TIMEOUT_MS);
  assert.equal(a.socket.destroyed, true, 'a shutdown waited for the idle timeout');
});
