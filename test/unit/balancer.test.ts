import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createBalancer, IpHash } from '../../proxy/balancer.ts';
import { Upstream, type UpstreamState } from '../../proxy/upstream.ts';

const created: Upstream[] = [];

function workers(count: number, concurrency = 1, pool = 'clone'): Upstream[] {
  const list = Array.from(
    { length: count },
    (_, index) => new Upstream({ pool, index, host: '127.0.0.1', port: 9200 + index, concurrency, idleSocketTimeoutMs: 1000 }),
  );
  created.push(...list);
  return list;
}

/** As if the pool had given out this many of the worker's slots. */
function setSlotsTaken(upstream: Upstream, slots: number): void {
  while (upstream.inflight < slots) upstream.slotTaken();
  while (upstream.inflight > slots) upstream.slotFreed();
}

after(() => {
  for (const upstream of created) upstream.close();
});

/** deterministic PRNG so the statistical checks cannot flake */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomIps(count: number, seed = 42): string[] {
  const random = mulberry32(seed);
  const octet = () => Math.floor(random() * 256);
  const ips = new Set<string>();
  while (ips.size < count) ips.add(`${1 + Math.floor(random() * 223)}.${octet()}.${octet()}.${octet()}`);
  return [...ips];
}

function picks(balancer: ReturnType<typeof createBalancer>, upstreams: Upstream[], count: number, key = '192.0.2.1'): string[] {
  return Array.from({ length: count }, () => balancer.pick(upstreams, key)?.name ?? 'none');
}

// --- round-robin ---------------------------------------------------------------------------

test('round-robin rotates through all free workers in order', () => {
  const upstreams = workers(3, 1, 'web');
  const order = picks(createBalancer('round-robin'), upstreams, 9);
  assert.equal(new Set(order.slice(0, 3)).size, 3, `first three picks must be three different workers: ${order}`);
  for (let i = 3; i < order.length; i++) assert.equal(order[i], order[i - 3], `not a rotation: ${order}`);
  // consecutive in list order (cyclically)
  const index = (name: string) => upstreams.findIndex((u) => u.name === name);
  for (let i = 1; i < order.length; i++) assert.equal(index(order[i]), (index(order[i - 1]) + 1) % 3, `not in list order: ${order}`);
});

test('round-robin skips full, draining and down workers; undefined when none is free', () => {
  const upstreams = workers(4, 1, 'web');
  const balancer = createBalancer('round-robin');
  setSlotsTaken(upstreams[1], 1); // full
  upstreams[2].changeState('draining');
  upstreams[3].changeState('down');
  assert.deepEqual(picks(balancer, upstreams, 4), ['web-0', 'web-0', 'web-0', 'web-0']);
  upstreams[3].changeState('ready');
  const order = picks(balancer, upstreams, 6);
  assert.deepEqual(new Set(order), new Set(['web-0', 'web-3']), `only web-0 and web-3 are free: ${order}`);
  for (let i = 1; i < order.length; i++) assert.notEqual(order[i], order[i - 1], `the two free workers must alternate: ${order}`);
  setSlotsTaken(upstreams[0], 1);
  setSlotsTaken(upstreams[3], 1);
  assert.equal(balancer.pick(upstreams, 'k'), undefined);
  assert.equal(createBalancer('round-robin').pick([], 'k'), undefined);
});

test('round-robin respects concurrency > 1 (a worker with one of two slots used is still free)', () => {
  const upstreams = workers(2, 2, 'web');
  const balancer = createBalancer('round-robin');
  setSlotsTaken(upstreams[0], 1);
  setSlotsTaken(upstreams[1], 2);
  assert.equal(balancer.pick(upstreams, 'k')?.name, 'web-0');
  assert.equal(balancer.pick(upstreams, 'k')?.name, 'web-0');
});

// --- least-outstanding ---------------------------------------------------------------------

test('least-outstanding picks the least loaded free worker', () => {
  const upstreams = workers(3, 4, 'bot');
  const balancer = createBalancer('least-outstanding');
  setSlotsTaken(upstreams[0], 3);
  setSlotsTaken(upstreams[1], 1);
  setSlotsTaken(upstreams[2], 2);
  for (let i = 0; i < 5; i++) assert.equal(balancer.pick(upstreams, 'k')?.name, 'bot-1');
  setSlotsTaken(upstreams[1], 4); // full now
  assert.equal(balancer.pick(upstreams, 'k')?.name, 'bot-2');
  upstreams[2].changeState('draining');
  assert.equal(balancer.pick(upstreams, 'k')?.name, 'bot-0');
  upstreams[0].changeState('down');
  assert.equal(balancer.pick(upstreams, 'k'), undefined);
});

test('least-outstanding never picks an idle draining or down worker over a busy ready one', () => {
  const upstreams = workers(3, 4, 'bot');
  const balancer = createBalancer('least-outstanding');
  upstreams[0].changeState('draining');
  upstreams[1].changeState('down');
  setSlotsTaken(upstreams[2], 3);
  for (let i = 0; i < 4; i++) assert.equal(balancer.pick(upstreams, 'k')?.name, 'bot-2');
});

test('least-outstanding spreads load evenly when picks take slots, and ties do not always go to the first', () => {
  const upstreams = workers(3, 2, 'bot');
  const balancer = createBalancer('least-outstanding');
  const taken: string[] = [];
  for (let i = 0; i < 6; i++) {
    const chosen = balancer.pick(upstreams, 'k');
    assert.ok(chosen, `pick ${i} found no worker although slots are free`);
    chosen.slotTaken();
    taken.push(chosen.name);
  }
  assert.deepEqual(upstreams.map((u) => u.inflight), [2, 2, 2], `load not spread: ${taken}`);
  // after the first three picks every worker must have one request (never 2 on one while another has 0)
  assert.equal(new Set(taken.slice(0, 3)).size, 3, `uneven first round: ${taken}`);
  assert.equal(balancer.pick(upstreams, 'k'), undefined);

  const idle = workers(3, 1, 'tie');
  const tieBalancer = createBalancer('least-outstanding');
  assert.ok(new Set(picks(tieBalancer, idle, 6)).size > 1, 'with equal load the first worker always wins');
});

// --- ip-hash -------------------------------------------------------------------------------

test('ip-hash: the same key always maps to the same worker, and order() is a full preference list', () => {
  const upstreams = workers(3);
  const balancer = new IpHash();
  for (const ip of randomIps(200, 1)) {
    const home = balancer.pick(upstreams, ip);
    assert.ok(home);
    for (let i = 0; i < 3; i++) assert.equal(balancer.pick(upstreams, ip), home, ip);
    const order = balancer.order(upstreams, ip);
    assert.equal(order[0], home);
    assert.equal(order.length, 3);
    assert.equal(new Set(order).size, 3, `order() repeats a worker: ${order.map((u) => u.name)}`);
  }
  assert.equal(createBalancer('ip-hash').pick([], '10.0.0.1'), undefined);
});

test('ip-hash spreads 3000 random client IPs reasonably evenly over 3 workers', () => {
  const upstreams = workers(3);
  const balancer = createBalancer('ip-hash');
  const counts = new Map<string, number>();
  const ips = randomIps(3000, 7);
  for (const ip of ips) {
    const name = balancer.pick(upstreams, ip)!.name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  assert.equal(counts.size, 3, `some worker got no clients: ${JSON.stringify([...counts])}`);
  for (const [name, count] of counts) {
    const share = count / ips.length;
    assert.ok(share >= 0.2 && share <= 0.47, `${name} got ${(share * 100).toFixed(1)}% of clients: ${JSON.stringify([...counts])}`);
  }
});

test('ip-hash spreads similar addresses (one /16 and IPv6 clients) too', () => {
  const upstreams = workers(3);
  const balancer = createBalancer('ip-hash');
  const random = mulberry32(99);
  const keys: string[] = [];
  for (let i = 0; i < 1500; i++) keys.push(`10.1.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`);
  for (let i = 0; i < 1500; i++) keys.push(`2001:db8:${Math.floor(random() * 65536).toString(16)}::${Math.floor(random() * 65536).toString(16)}`);
  const counts = new Map<string, number>();
  for (const key of keys) {
    const name = balancer.pick(upstreams, key)!.name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  assert.equal(counts.size, 3, JSON.stringify([...counts]));
  for (const [name, count] of counts) {
    const share = count / keys.length;
    assert.ok(share >= 0.15 && share <= 0.55, `${name} got ${(share * 100).toFixed(1)}%: ${JSON.stringify([...counts])}`);
  }
});

test('ip-hash: taking one worker of 4 down moves only its own keys', () => {
  const upstreams = workers(4);
  const balancer = createBalancer('ip-hash');
  const ips = randomIps(3000, 3);
  const before = new Map(ips.map((ip) => [ip, balancer.pick(upstreams, ip)!.name]));
  const removed = upstreams[2];
  for (const state of ['down', 'draining'] as UpstreamState[]) {
    removed.changeState(state);
    let others = 0;
    let kept = 0;
    for (const ip of ips) {
      const now = balancer.pick(upstreams, ip);
      assert.ok(now, `no worker for ${ip} with 3 of 4 ready`);
      assert.notEqual(now, removed, `${ip} still sent to a ${state} worker`);
      if (before.get(ip) !== removed.name) {
        others++;
        if (now.name === before.get(ip)) kept++;
      }
    }
    assert.ok(others > 1500, 'too few keys outside the removed worker to judge');
    assert.ok(kept / others >= 0.9, `${state}: only ${((kept / others) * 100).toFixed(1)}% of other workers' keys stayed`);
    removed.changeState('ready');
    // and back: everybody returns home
    for (const ip of ips) assert.equal(balancer.pick(upstreams, ip)!.name, before.get(ip), `${ip} did not return home after ${state}`);
  }
});

test('ip-hash: a full home worker spills to the next worker on the ring, deterministically', () => {
  const upstreams = workers(4);
  const balancer = new IpHash();
  const other = new IpHash();
  for (const ip of randomIps(100, 11)) {
    const order = balancer.order(upstreams, ip);
    const [home, second, third] = order;
    setSlotsTaken(home, home.concurrency);
    for (let i = 0; i < 3; i++) assert.equal(balancer.pick(upstreams, ip), second, `${ip}: home full, expected ${second.name}`);
    assert.equal(other.pick(upstreams, ip), second, `${ip}: another proxy spills elsewhere`);
    setSlotsTaken(second, second.concurrency);
    assert.equal(balancer.pick(upstreams, ip), third, `${ip}: home and second full, expected ${third.name}`);
    // a full worker is not removed from the ring: the preference order stays put
    assert.deepEqual(balancer.order(upstreams, ip), order);
    for (const upstream of upstreams) setSlotsTaken(upstream, 0);
    assert.equal(balancer.pick(upstreams, ip), home, `${ip}: did not return home once it had room`);
  }
  for (const upstream of upstreams) setSlotsTaken(upstream, upstream.concurrency);
  assert.equal(balancer.pick(upstreams, '10.0.0.1'), undefined);
});

test('ip-hash: two proxies (separate instances) agree on the mapping', () => {
  const ips = randomIps(500, 5);
  const mapping = (balancer: IpHash, upstreams: Upstream[]) => ips.map((ip) => balancer.order(upstreams, ip).map((u) => u.name).join(','));
  const first = mapping(new IpHash(), workers(3));
  const second = mapping(new IpHash(), workers(3));
  assert.deepEqual(second, first);
  // a proxy that lists the workers in another order builds the same ring
  const reversed = mapping(new IpHash(), workers(3).reverse());
  assert.deepEqual(reversed, first);
});

test('ip-hash follows state changes on the same instance (ring rebuilt when a worker returns)', () => {
  const upstreams = workers(3);
  const balancer = new IpHash();
  const ips = randomIps(300, 13);
  const before = ips.map((ip) => balancer.pick(upstreams, ip)!.name);
  upstreams[0].changeState('down');
  upstreams[1].changeState('down');
  for (const ip of ips) assert.equal(balancer.pick(upstreams, ip)?.name, 'clone-2');
  upstreams[2].changeState('draining');
  assert.equal(balancer.pick(upstreams, ips[0]), undefined);
  assert.deepEqual(balancer.order(upstreams, ips[0]), []);
  for (const upstream of upstreams) upstream.changeState('ready');
  assert.deepEqual(ips.map((ip) => balancer.pick(upstreams, ip)!.name), before);
});
