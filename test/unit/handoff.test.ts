import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../lib/config.ts';
import { SeededRandom } from '../../lib/seeded-random.ts';
import { createBalancer } from '../../proxy/balancer.ts';
import { RetiringSlots, SuccessorSlots, type HandoffMessage } from '../../proxy/handoff.ts';
import { Pool, type Slot } from '../../proxy/pool.ts';
import { Upstream } from '../../proxy/upstream.ts';

const created: Pool[] = [];
after(() => {
  for (const pool of created) pool.close();
});

/** One proxy process's view of the same two workers (web-0, web-1). */
function processPools(concurrency: number): Map<string, Pool> {
  const base = validateConfig({}, 'test').pools.web;
  const config = { ...base, concurrency, perClient: { maxInFlight: 0, maxQueued: 1000, maxUpgraded: 16 }, queue: { max: 1000, timeoutMs: 60_000 } };
  const upstreams = [0, 1].map((index) => new Upstream({ pool: 'web', index, host: '127.0.0.1', port: 9100 + index, concurrency, idleSocketTimeoutMs: 1000 }));
  const pool = new Pool('web', config, upstreams);
  created.push(pool);
  return new Map([['web', pool]]);
}

/** Messages each way, in order, delivered when the test says (the master's relay, slowed down). */
class Wire {
  private readonly queue: HandoffMessage[] = [];
  constructor(private readonly deliver: (message: HandoffMessage) => void) {}
  send = (message: HandoffMessage) => {
    this.queue.push(structuredClone(message));
  };
  get pending(): number {
    return this.queue.length;
  }
  deliverOne(): void {
    const message = this.queue.shift();
    if (message) this.deliver(message);
  }
}

function pair(concurrency: number) {
  const old = processPools(concurrency);
  const next = processPools(concurrency);
  let retiring!: RetiringSlots;
  let successor!: SuccessorSlots;
  const toSuccessor = new Wire((message) => successor.onMessage(message));
  const toRetiring = new Wire((message) => retiring.onMessage(message));
  retiring = new RetiringSlots(old.values(), toSuccessor.send);
  successor = new SuccessorSlots(next, toRetiring.send);
  return { old: old.get('web')!, next: next.get('web')!, retiring, successor, toSuccessor, toRetiring };
}

const balancer = createBalancer('least-outstanding');

function take(pool: Pool, client: string, held: Slot[]): void {
  pool.acquire({ balancer, key: client, client, lane: 'page', priority: 0 }, (_failure, slot) => {
    if (slot) held.push(slot);
  });
}

function assertWithinConcurrency(old: Pool, next: Pool, concurrency: number, when: string): void {
  for (let index = 0; index < old.upstreams.length; index++) {
    const sum = old.upstreams[index].inflight + next.upstreams[index].inflight;
    assert.ok(sum <= concurrency, `${when}: web-${index} has ${sum} requests from both processes, concurrency ${concurrency}`);
  }
}

test('the successor sends nothing until the retiring process reports what it holds', () => {
  const { old, next, retiring, successor, toSuccessor } = pair(1);
  const oldSlots: Slot[] = [];
  take(old, 'a', oldSlots);
  assert.equal(oldSlots.length, 1);
  successor.begin();
  const newSlots: Slot[] = [];
  take(next, 'b', newSlots);
  take(next, 'c', newSlots);
  assert.equal(newSlots.length, 0, 'no slot before the report: the old process may hold all of them');
  retiring.begin();
  toSuccessor.deliverOne();
  assert.equal(newSlots.length, 1, 'the worker the old process does not hold is free');
  assert.notEqual(newSlots[0].upstream.name, oldSlots[0].upstream.name);
  oldSlots[0].release();
  assert.equal(newSlots.length, 1, 'the freed slot is not the successor\'s until the report arrives');
  toSuccessor.deliverOne();
  assert.equal(newSlots.length, 2);
  assertWithinConcurrency(old, next, 1, 'end');
});

test('a request the retiring process gets late borrows a slot from the successor', () => {
  const { old, next, retiring, successor, toSuccessor, toRetiring } = pair(1);
  successor.begin();
  retiring.begin();
  toSuccessor.deliverOne();
  const oldSlots: Slot[] = [];
  take(old, 'late', oldSlots);
  assert.equal(oldSlots.length, 0, 'the retiring process holds nothing: it must ask');
  assert.equal(toSuccessor.pending, 1);
  toSuccessor.deliverOne(); // the borrow
  assert.equal(toRetiring.pending, 1, 'a free worker is lent at once');
  const newSlots: Slot[] = [];
  take(next, 'n1', newSlots);
  take(next, 'n2', newSlots);
  assert.equal(newSlots.length, 1, 'the lent worker is not used by the successor');
  toRetiring.deliverOne();
  assert.equal(oldSlots.length, 1, 'the late request got the lent slot');
  assertWithinConcurrency(old, next, 1, 'after the loan');
  oldSlots[0].release();
  while (toSuccessor.pending) toSuccessor.deliverOne();
  assert.equal(newSlots.length, 2, 'the slot came back when the late request was done');
});

test('the successor takes the drains the supervisor set on the retiring process', () => {
  const { old, next, retiring, successor, toSuccessor } = pair(1);
  old.setState(old.upstreams[1], 'draining');
  successor.begin();
  retiring.begin();
  toSuccessor.deliverOne();
  assert.equal(next.upstreams[1].state, 'draining');
  assert.equal(next.upstreams[0].state, 'ready');
});

test('the predecessor gone: every slot is the successor\'s, and late loans are not lent', () => {
  const { old, next, retiring, successor, toSuccessor, toRetiring } = pair(1);
  const oldSlots: Slot[] = [];
  take(old, 'a', oldSlots);
  take(old, 'b', oldSlots);
  successor.begin();
  retiring.begin();
  take(old, 'c', oldSlots);
  toSuccessor.deliverOne();
  toSuccessor.deliverOne(); // c's borrow: queued in the successor, both workers held
  successor.predecessorGone();
  const newSlots: Slot[] = [];
  take(next, 'n', newSlots);
  assert.equal(newSlots.length, 1);
  assert.equal(toRetiring.pending, 0, 'nothing is lent to a process that is gone');
  assert.equal(next.upstreams.filter((upstream) => upstream.hasFreeSlot).length, 1, 'the queued borrow took no slot for good');
});

test('seeded interleavings: the two processes never exceed a worker\'s concurrency', () => {
  for (const concurrency of [1, 2]) {
    for (let seed = 1; seed <= 40; seed++) {
      const random = new SeededRandom(seed * 7919 + concurrency);
      const { old, next, retiring, successor, toSuccessor, toRetiring } = pair(concurrency);
      const oldSlots: Slot[] = [];
      const newSlots: Slot[] = [];
      for (let i = 0; i < random.int(4); i++) take(old, `o${i}`, oldSlots);
      successor.begin();
      let retired = false;
      for (let step = 0; step < 400; step++) {
        const action = random.int(8);
        if (action === 0 && !retired) {
          retiring.begin();
          retired = true;
        } else if (action === 1) take(next, `n${step % 5}`, newSlots);
        else if (action === 2 && retired) take(old, `late${step % 3}`, oldSlots);
        else if (action === 3 && oldSlots.length) oldSlots.splice(random.int(oldSlots.length), 1)[0].release();
        else if (action === 4 && newSlots.length) newSlots.splice(random.int(newSlots.length), 1)[0].release();
        else if (action === 5) toSuccessor.deliverOne();
        else if (action === 6) toRetiring.deliverOne();
        else if (action === 7 && !retired && oldSlots.length < 3) take(old, `o${step}`, oldSlots);
        assertWithinConcurrency(old, next, concurrency, `seed ${seed}, concurrency ${concurrency}, step ${step}`);
      }
      // let everything settle: the retiring process finishes, reports reach the successor
      if (!retired) retiring.begin();
      for (let round = 0; round < 50 && (oldSlots.length || newSlots.length || toSuccessor.pending || toRetiring.pending); round++) {
        oldSlots.splice(0).forEach((slot) => slot.release());
        newSlots.splice(0).forEach((slot) => slot.release());
        while (toSuccessor.pending) toSuccessor.deliverOne();
        while (toRetiring.pending) toRetiring.deliverOne();
        assertWithinConcurrency(old, next, concurrency, `seed ${seed} settling`);
      }
      for (const upstream of old.upstreams) assert.equal(upstream.inflight, 0, `seed ${seed}: the retiring process ends holding nothing`);
      assert.equal(next.queueDepth, 0, `seed ${seed}: no borrow is left queued once the retiring process waits for none`);
      for (const upstream of next.upstreams) {
        assert.equal(upstream.slotLimit, concurrency, `seed ${seed}: ${upstream.name} is whole again once the old process holds nothing`);
      }
    }
  }
});
