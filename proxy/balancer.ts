import { createHash } from 'node:crypto';
import ConsistentHash from 'consistent-hash';
import type { BalancerName } from '../lib/config.ts';
import type { Upstream } from './upstream.ts';

/** Picks a worker with a free slot for a request, or undefined when every worker is busy. */
export interface Balancer {
  pick(upstreams: readonly Upstream[], key: string): Upstream | undefined;
}

class RoundRobin implements Balancer {
  private cursor = 0;

  pick(upstreams: readonly Upstream[]): Upstream | undefined {
    for (let step = 0; step < upstreams.length; step++) {
      const candidate = upstreams[(this.cursor + step) % upstreams.length];
      if (candidate.hasFreeSlot) {
        this.cursor = (this.cursor + step + 1) % upstreams.length;
        return candidate;
      }
    }
    return undefined;
  }
}

class LeastOutstanding implements Balancer {
  private cursor = 0;

  pick(upstreams: readonly Upstream[]): Upstream | undefined {
    let best: Upstream | undefined;
    // Start the scan at a rotating offset so ties do not always go to the first worker.
    for (let step = 0; step < upstreams.length; step++) {
      const candidate = upstreams[(this.cursor + step) % upstreams.length];
      if (candidate.hasFreeSlot && (!best || candidate.inflight < best.inflight)) best = candidate;
    }
    this.cursor = (this.cursor + 1) % Math.max(1, upstreams.length);
    return best;
  }
}

const RING_RANGE = 1_000_003;
const POINTS_PER_WORKER = 64;

/** Control points derived from the worker's name, so every proxy process builds the same ring. */
function controlPoints(name: string): number[] {
  const points: number[] = [];
  for (let i = 0; i < POINTS_PER_WORKER; i++) {
    points.push(createHash('sha1').update(`${name}#${i}`).digest().readUInt32BE(0) % RING_RANGE);
  }
  return points;
}

/**
 * IP hash on a consistent-hash ring: a client keeps its worker while the ring changes little.
 * When that worker is full the request spills to the next worker on the ring (HAProxy's
 * hash-balance-factor idea), so one busy worker never queues a client while others are idle.
 */
class IpHash implements Balancer {
  private ring = new ConsistentHash({ range: RING_RANGE, weight: POINTS_PER_WORKER });
  private members = '';
  private byName = new Map<string, Upstream>();

  private sync(upstreams: readonly Upstream[]): void {
    const live = upstreams.filter((upstream) => upstream.state === 'ready');
    const members = live.map((upstream) => upstream.name).join(',');
    if (members === this.members) return;
    this.members = members;
    this.ring = new ConsistentHash({ range: RING_RANGE, weight: POINTS_PER_WORKER });
    this.byName = new Map(live.map((upstream) => [upstream.name, upstream]));
    for (const upstream of live) this.ring.add(upstream.name, POINTS_PER_WORKER, controlPoints(upstream.name));
  }

  /** the ring's preference order for a key: home worker first */
  order(upstreams: readonly Upstream[], key: string): Upstream[] {
    this.sync(upstreams);
    if (this.byName.size === 0) return [];
    // The ring's own string hash is skewed for correlated keys such as neighbouring IPs.
    const spread = createHash('sha1').update(key).digest('base64');
    const names = this.ring.get(spread, this.byName.size) as string[];
    return names.map((name) => this.byName.get(name)!);
  }

  pick(upstreams: readonly Upstream[], key: string): Upstream | undefined {
    return this.order(upstreams, key).find((upstream) => upstream.hasFreeSlot);
  }
}

export function createBalancer(name: BalancerName): Balancer {
  switch (name) {
    case 'round-robin':
      return new RoundRobin();
    case 'least-outstanding':
      return new LeastOutstanding();
    case 'ip-hash':
      return new IpHash();
  }
}

export { IpHash };
