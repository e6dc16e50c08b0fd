import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateConfig } from '../../lib/config.ts';
import { createBalancer, type Balancer } from '../../proxy/balancer.ts';
import { Pool, type AcquireFailure, type Slot } from '../../proxy/pool.ts';
import { Upstream } from '../../proxy/upstream.ts';

const pools: Pool[] = [];
after(() => {
  for (const pool of pools) pool.close();
});

/** The queue's mechanics, one client: per-client limits are off unless a test gives them. */
function makePool(options: { workers?: number; concurrency?: number; max?: number; timeoutMs?: number; perClient?: { maxInFlight?: number; maxQueued: number } } = {}): Pool {
  const concurrency = options.concurrency ?? 1;
  const base = validateConfig({}, 'test').pools.web;
  const perClient = { maxUpgraded: 16, ...(options.perClient ?? { maxInFlight: 0, maxQueued: 1000 }) };
  const config = { ...base, concurrency, perClient, queue: { max: options.max ?? 100, timeoutMs: options.timeoutMs ?? 10_000 } };
  const upstreams = Array.from(
    { length: options.workers ?? 1 },
    (_, index) => new Upstream({ pool: 'web', index, host: '127.0.0.1', port: 9100 + index, concurrency, idleSocketTimeoutMs: 1000 }),
  );
  const pool = new Pool('web', config, upstreams);
  pools.push(pool);
  return pool;
}

interface Ticket {
  label: string;
  calls: number;
  failure: AcquireFailure | undefined;
  slot: Slot | undefined;
  cancel: () => void;
  /** resolves on the (first) callback */
  done: Promise<void>;
}

/** Acquires and records every callback call, so "exactly once" can be checked. */
function acquire(pool: Pool, label: string, priority = 0, balancer: Balancer = createBalancer('round-robin'), key = '192.0.2.1'): Ticket {
  let resolveDone!: () => void;
  const ticket: Ticket = {
    label,
    calls: 0,
    failure: undefined,
    slot: undefined,
    cancel: () => {},
    done: new Promise<void>((resolve) => (resolveDone = resolve)),
  };
  ticket.cancel = pool.acquire({ balancer, key, client: key, lane: 'page', priority }, (failure, slot) => {
    ticket.calls++;
    ticket.failure = failure;
    ticket.slot = slot;
    order.push(label);
    resolveDone();
  });
  return ticket;
}

let order: string[] = [];

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function served(ticket: Ticket): Slot {
  assert.equal(ticket.calls, 1, `${ticket.label}: callback ran ${ticket.calls} times`);
  assert.equal(ticket.failure, undefined, `${ticket.label} failed with ${ticket.failure}`);
  assert.ok(ticket.slot, `${ticket.label} has no slot`);
  return ticket.slot;
}

function waiting(ticket: Ticket): void {
  assert.equal(ticket.calls, 0, `${ticket.label} should still be waiting`);
}

test('each worker has `concurrency` slots; the next request queues', () => {
  order = [];
  const pool = makePool({ workers: 1, concurrency: 2 });
  const [upstream] = pool.upstreams;
  const a = acquire(pool, 'a');
  const b = acquire(pool, 'b');
  // a free slot is granted synchronously
  served(a);
  served(b);
  assert.equal(upstream.inflight, 2);
  const c = acquire(pool, 'c');
  waiting(c);
  assert.equal(pool.queueDepth, 1);
  assert.equal(pool.stats.queued, 1);
  a.slot!.release();
  assert.equal(served(c).upstream, upstream);
  assert.equal(upstream.inflight, 2);
  assert.equal(pool.queueDepth, 0);
  b.slot!.release();
  c.slot!.release();
  assert.equal(upstream.inflight, 0);

  const wide = makePool({ workers: 2, concurrency: 2 });
  const tickets = ['w1', 'w2', 'w3', 'w4'].map((label) => acquire(wide, label));
  for (const ticket of tickets) served(ticket);
  assert.deepEqual(wide.upstreams.map((u) => u.inflight), [2, 2]);
  const fifth = acquire(wide, 'w5');
  waiting(fifth);
  tickets[3].slot!.release();
  assert.equal(served(fifth).upstream, tickets[3].slot!.upstream);
});

test('waiters of one priority are served first in, first out', () => {
  order = [];
  const pool = makePool();
  const holder = acquire(pool, 'holder');
  const waiters = ['w1', 'w2', 'w3', 'w4'].map((label) => acquire(pool, label, 1));
  waiters.forEach(waiting);
  let current = served(holder);
  for (const ticket of waiters) {
    current.release();
    current = served(ticket);
    for (const later of waiters.slice(waiters.indexOf(ticket) + 1)) waiting(later);
  }
  current.release();
  assert.deepEqual(order, ['holder', 'w1', 'w2', 'w3', 'w4']);
  assert.equal(pool.upstreams[0].inflight, 0);
});

test('a lower priority number is served first; FIFO inside each priority', () => {
  order = [];
  const pool = makePool();
  const holder = acquire(pool, 'holder');
  const tickets = [
    acquire(pool, 'page-1', 1),
    acquire(pool, 'page-2', 1),
    acquire(pool, 'browser-1', 0),
    acquire(pool, 'low-1', 5),
    acquire(pool, 'browser-2', 0),
  ];
  let current = served(holder);
  for (let i = 0; i < tickets.length; i++) {
    current.release();
    current = served(tickets.find((t) => t.label === order[order.length - 1])!);
  }
  current.release();
  assert.deepEqual(order, ['holder', 'browser-1', 'browser-2', 'page-1', 'page-2', 'low-1']);
});

test('queue.max: the next request fails at once with queue-full', () => {
  order = [];
  const pool = makePool({ max: 2 });
  const holder = acquire(pool, 'holder');
  const q1 = acquire(pool, 'q1');
  const q2 = acquire(pool, 'q2');
  const rejected = acquire(pool, 'rejected');
  // synchronously, not after a timeout
  assert.equal(rejected.calls, 1);
  assert.equal(rejected.failure, 'queue-full');
  assert.equal(rejected.slot, undefined);
  assert.equal(pool.stats.queueFull, 1);
  assert.equal(pool.queueDepth, 2);
  rejected.cancel(); // harmless
  served(holder).release();
  served(q1).release();
  served(q2).release();
  assert.equal(rejected.calls, 1, 'a rejected request must never get a slot later');

  const none = makePool({ max: 0 });
  const first = acquire(none, 'first');
  served(first);
  const second = acquire(none, 'second');
  assert.equal(second.failure, 'queue-full', 'queue.max 0 means no queue at all');
  assert.equal(none.queueDepth, 0);
});

test('a waiter that gets no slot within queue.timeoutMs fails with queue-timeout', async () => {
  order = [];
  const pool = makePool({ timeoutMs: 50 });
  const holder = acquire(pool, 'holder');
  const late = acquire(pool, 'late');
  waiting(late);
  await within(late.done, 2000, 'queue-timeout');
  assert.equal(late.failure, 'queue-timeout');
  assert.equal(late.slot, undefined);
  assert.equal(pool.stats.queueTimeouts, 1);
  assert.equal(pool.queueDepth, 0);
  // the freed slot goes nowhere (the timed-out waiter is gone)
  served(holder).release();
  assert.equal(late.calls, 1);
  assert.equal(pool.upstreams[0].inflight, 0);
  assert.ok(pool.retryAfterSec >= 1);
});

test('a waiter served before its deadline never also times out', async () => {
  order = [];
  const pool = makePool({ timeoutMs: 40 });
  const holder = acquire(pool, 'holder');
  const next = acquire(pool, 'next');
  served(holder).release();
  served(next);
  await sleep(120);
  assert.equal(next.calls, 1);
  assert.equal(next.failure, undefined);
  assert.equal(pool.stats.queueTimeouts, 0);
  next.slot!.release();
});

test('cancel removes a waiter; the next waiter gets the slot; cancel is a no-op afterwards', async () => {
  order = [];
  const pool = makePool({ timeoutMs: 50 });
  const holder = acquire(pool, 'holder');
  const gone = acquire(pool, 'gone');
  const next = acquire(pool, 'next');
  assert.equal(pool.queueDepth, 2);
  gone.cancel();
  assert.equal(pool.queueDepth, 1);
  gone.cancel(); // twice: no double decrement
  assert.equal(pool.queueDepth, 1);
  served(holder).release();
  served(next);
  assert.equal(gone.calls, 0, 'a cancelled waiter must not be called back');
  // cancelling a served request does not release its slot or touch the queue
  next.cancel();
  assert.equal(pool.upstreams[0].inflight, 1);
  // the cancelled waiter's timer is gone too: no queue-timeout later
  await sleep(120);
  assert.equal(gone.calls, 0);
  assert.equal(pool.stats.queueTimeouts, 0);
  assert.equal(pool.queueDepth, 0);
  next.slot!.release();
  // an immediate grant returns a harmless cancel
  const immediate = acquire(pool, 'immediate');
  served(immediate);
  immediate.cancel();
  assert.equal(pool.upstreams[0].inflight, 1);
  immediate.slot!.release();
});

test('release is idempotent: a double release frees one slot, not two', () => {
  order = [];
  const pool = makePool({ concurrency: 1 });
  const [upstream] = pool.upstreams;
  const first = acquire(pool, 'first');
  const w1 = acquire(pool, 'w1');
  const w2 = acquire(pool, 'w2');
  const slot = served(first);
  slot.release();
  slot.release();
  served(w1);
  waiting(w2);
  assert.equal(upstream.inflight, 1, 'inflight went wrong after a double release');
  w1.slot!.release();
  served(w2).release();
  w2.slot!.release();
  assert.equal(upstream.inflight, 0);
  assert.ok(upstream.hasFreeSlot);
});

test('a worker set back to ready gets the queued waiters', () => {
  order = [];
  const pool = makePool({ workers: 2, concurrency: 1 });
  const [u0, u1] = pool.upstreams;
  const events: string[] = [];
  pool.on('state', (upstream: Upstream, previous: string) => events.push(`${upstream.name}:${previous}->${upstream.state}`));
  pool.setState(u0, 'down');
  pool.setState(u1, 'down');
  const a = acquire(pool, 'a');
  const b = acquire(pool, 'b');
  const c = acquire(pool, 'c');
  waiting(a);
  pool.setState(u1, 'ready');
  assert.equal(served(a).upstream, u1);
  waiting(b);
  pool.setState(u0, 'ready');
  assert.equal(served(b).upstream, u0);
  waiting(c);
  pool.setState(u0, 'ready'); // unchanged: no event, no extra slot
  waiting(c);
  assert.deepEqual(events, ['web-0:ready->down', 'web-1:ready->down', 'web-1:down->ready', 'web-0:down->ready']);
  a.slot!.release();
  assert.equal(served(c).upstream, u1);
});

test('draining and down workers never get new slots, even when idle', () => {
  order = [];
  const pool = makePool({ workers: 3, concurrency: 1 });
  const [u0, u1, u2] = pool.upstreams;
  const onU1 = acquire(pool, 'on-u1', 0, { pick: (upstreams) => upstreams[1] });
  assert.equal(served(onU1).upstream, u1);
  pool.setState(u1, 'draining');
  pool.setState(u2, 'down');
  const a = acquire(pool, 'a');
  assert.equal(served(a).upstream, u0);
  const b = acquire(pool, 'b');
  const c = acquire(pool, 'c', 0, createBalancer('least-outstanding'));
  const d = acquire(pool, 'd', 0, createBalancer('ip-hash'), '198.51.100.7');
  waiting(b);
  // the draining worker finishes its request: its slot must not be handed on
  onU1.slot!.release();
  assert.equal(u1.inflight, 0);
  waiting(b);
  pool.dispatch();
  waiting(b);
  waiting(c);
  waiting(d);
  // each release on u0 serves one more waiter (in the fair queue's order), always on u0
  let current = a;
  for (let left = 3; left > 0; left--) {
    current.slot!.release();
    const next = [b, c, d].filter((ticket) => ticket.calls === 1 && ticket.slot !== current.slot);
    assert.equal([b, c, d].filter((ticket) => ticket.calls === 1).length, 4 - left, 'one waiter served per release');
    current = next.find((ticket) => ticket.slot!.upstream.inflight === 1 && order.at(-1) === ticket.label)!;
    assert.equal(served(current).upstream, u0);
  }
  current.slot!.release();
  assert.equal(u1.inflight + u2.inflight, 0);
  assert.equal(u1.served, 1, 'the draining worker got a new request');
  assert.equal(u2.served, 0, 'the down worker got a request');
});

test('waiters are served even when their callbacks release at once (re-entrant dispatch)', () => {
  order = [];
  const pool = makePool({ concurrency: 1 });
  const holder = acquire(pool, 'holder');
  const released: string[] = [];
  for (const label of ['r1', 'r2', 'r3']) {
    pool.acquire({ balancer: createBalancer('round-robin'), key: 'k', client: 'k', lane: 'page', priority: 0 }, (failure, slot) => {
      assert.equal(failure, undefined);
      released.push(label);
      slot!.release();
    });
  }
  served(holder).release();
  assert.deepEqual(released, ['r1', 'r2', 'r3']);
  assert.equal(pool.queueDepth, 0);
  assert.equal(pool.upstreams[0].inflight, 0);
  assert.equal(pool.stats.queuePeak, 3);
});

test('close() fails every waiter with closing, once, and stops their timers', async () => {
  order = [];
  const pool = makePool({ timeoutMs: 50 });
  const holder = acquire(pool, 'holder');
  const waiters = [acquire(pool, 'w1', 0), acquire(pool, 'w2', 1), acquire(pool, 'w3', 1)];
  pool.close();
  for (const ticket of waiters) {
    assert.equal(ticket.calls, 1, `${ticket.label} not told`);
    assert.equal(ticket.failure, 'closing');
    assert.equal(ticket.slot, undefined);
  }
  assert.equal(pool.queueDepth, 0);
  await sleep(120);
  for (const ticket of waiters) assert.equal(ticket.calls, 1, `${ticket.label} called again after close`);
  assert.equal(pool.stats.queueTimeouts, 0);
  served(holder);
  waiters[0].cancel(); // harmless after close
  assert.equal(pool.queueDepth, 0);
});

test('a full queue makes room for a more urgent request by turning away the newest less urgent one', () => {
  const config = validateConfig({ pools: { web: { queue: { max: 2, timeoutMs: 60_000 }, perClient: { maxInFlight: 0 } }, clone: {}, bot: {} } }, 'test');
  const upstream = new Upstream({ pool: 'web', index: 0, host: '127.0.0.1', port: 1, concurrency: 1, idleSocketTimeoutMs: 1000 });
  const pool = new Pool('web', config.pools.web, [upstream]);
  const balancer = createBalancer('round-robin');
  const outcomes: string[] = [];
  const record = (label: string) => (failure: string | undefined) => outcomes.push(`${label}:${failure ?? 'slot'}`);
  pool.acquire({ balancer, key: 'a', client: 'a', lane: 'page', priority: 1 }, record('busy'));
  pool.acquire({ balancer, key: 'a', client: 'a', lane: 'page', priority: 1 }, record('page1'));
  pool.acquire({ balancer, key: 'a', client: 'a', lane: 'page', priority: 1 }, record('page2'));
  pool.acquire({ balancer, key: 'a', client: 'a', lane: 'page', priority: 0 }, record('browser'));
  pool.acquire({ balancer, key: 'a', client: 'a', lane: 'page', priority: 1 }, record('page3'));
  assert.deepEqual(outcomes, ['busy:slot', 'page2:queue-full', 'page3:queue-full']);
  assert.equal(pool.queueDepth, 2);
  pool.close();
  assert.deepEqual(outcomes.slice(3).sort(), ['browser:closing', 'page1:closing']);
});

test('fair share: a client with many waiting requests is served in turn with the others, not before them', (t) => {
  // Who goes next depends on worker time used and time waited: a clock of the test's own, each
  // request holding its worker 10 ms, so the order does not hang on how fast this machine runs.
  let clock = 1000;
  t.mock.method(performance, 'now', () => clock);
  order = [];
  const pool = makePool({ workers: 1, perClient: { maxQueued: 100 } });
  const holder = acquire(pool, 'holder', 0, createBalancer('round-robin'), '203.0.113.9');
  const greedy = ['g1', 'g2', 'g3', 'g4'].map((label) => acquire(pool, label, 0, createBalancer('round-robin'), '192.0.2.66'));
  const alice = acquire(pool, 'alice', 0, createBalancer('round-robin'), '192.0.2.1');
  const bob = acquire(pool, 'bob', 0, createBalancer('round-robin'), '192.0.2.2');
  let current = served(holder);
  for (let step = 0; step < 6; step++) {
    clock += 10;
    current.release();
    current = [...greedy, alice, bob].find((ticket) => ticket.slot && order.at(-1) === ticket.label)!.slot!;
  }
  clock += 10;
  current.release();
  assert.deepEqual(order, ['holder', 'g1', 'alice', 'bob', 'g2', 'g3', 'g4']);
});

test('fair share: a client at its in-flight limit waits while another client takes the free worker', () => {
  order = [];
  const pool = makePool({ workers: 2, perClient: { maxInFlight: 1, maxQueued: 100 } });
  const first = acquire(pool, 'greedy-1', 0, createBalancer('round-robin'), '192.0.2.66');
  const second = acquire(pool, 'greedy-2', 0, createBalancer('round-robin'), '192.0.2.66');
  served(first);
  waiting(second);
  assert.equal(pool.upstreams.filter((upstream) => upstream.inflight > 0).length, 1, 'one worker stays free for others');
  const other = acquire(pool, 'browser', 0, createBalancer('round-robin'), '192.0.2.1');
  served(other);
  other.slot!.release();
  waiting(second); // the free worker is not the greedy client's while it holds its share
  first.slot!.release();
  served(second).release();
  assert.deepEqual(pool.topClients(5), []);
});

test('fair share: past its queue share a client gets client-share (429), others still queue', () => {
  order = [];
  const pool = makePool({ workers: 1, perClient: { maxQueued: 2 } });
  const holder = acquire(pool, 'holder', 0, createBalancer('round-robin'), '192.0.2.66');
  const queued = ['q1', 'q2'].map((label) => acquire(pool, label, 0, createBalancer('round-robin'), '192.0.2.66'));
  const refused = acquire(pool, 'q3', 0, createBalancer('round-robin'), '192.0.2.66');
  assert.equal(refused.failure, 'client-share');
  assert.equal(pool.stats.clientShareRefused, 1);
  const other = acquire(pool, 'other', 0, createBalancer('round-robin'), '192.0.2.1');
  queued.forEach(waiting);
  waiting(other);
  assert.deepEqual(pool.topClients(1), [{ lane: 'page', client: '192.0.2.66', holding: 1, queued: 2 }]);
  // the other client has used no worker time: it goes before the holder's next request
  served(holder).release();
  served(other).release();
  served(queued[0]).release();
  served(queued[1]).release();
});

test('fair share: a client that used more worker time lately waits behind one that used less', async () => {
  order = [];
  const pool = makePool({ workers: 1, perClient: { maxQueued: 100 } });
  const heavy = acquire(pool, 'heavy-1', 0, createBalancer('round-robin'), '192.0.2.66');
  await sleep(60); // an expensive request
  const light = acquire(pool, 'light-1', 0, createBalancer('round-robin'), '192.0.2.1');
  const heavyAgain = acquire(pool, 'heavy-2', 0, createBalancer('round-robin'), '192.0.2.66');
  served(heavy).release();
  served(light);
  await sleep(5); // a cheap one
  const lightAgain = acquire(pool, 'light-2', 0, createBalancer('round-robin'), '192.0.2.1');
  light.slot!.release();
  // heavy-2 queued first, but its client used ~60 ms of worker time and light's ~5 ms
  served(lightAgain).release();
  served(heavyAgain).release();
  assert.deepEqual(order, ['heavy-1', 'light-1', 'light-2', 'heavy-2']);
});

test('fair share: a full queue turns away the newest request of the client with the most waiting', () => {
  order = [];
  const pool = makePool({ workers: 1, max: 3, perClient: { maxQueued: 100 } });
  const holder = acquire(pool, 'holder', 0, createBalancer('round-robin'), '192.0.2.9');
  const greedy = ['g1', 'g2', 'g3'].map((label) => acquire(pool, label, 0, createBalancer('round-robin'), '192.0.2.66'));
  const alice = acquire(pool, 'alice', 0, createBalancer('round-robin'), '192.0.2.1');
  waiting(alice);
  assert.equal(greedy[2].failure, 'queue-full', 'the greedy client gave way');
  // greedy now has 2 waiting, alice 1: a second request of alice's does not push greedy out again
  const alice2 = acquire(pool, 'alice-2', 0, createBalancer('round-robin'), '192.0.2.1');
  assert.equal(alice2.failure, 'queue-full');
  assert.equal(greedy[1].calls, 0);
  pool.close();
  served(holder).release();
});
