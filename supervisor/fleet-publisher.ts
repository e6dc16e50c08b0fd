import { Redis } from 'ioredis';
import { FLEET_CHANNEL, FLEET_STATE_KEY, type ProxyWorkerState } from '../lib/fleet-channel.ts';
import { fleetKey, signFleetMessage, signStateEntry } from '../lib/fleet-signing.ts';
import type { Logger } from '../lib/log.ts';
import { workersOf, type ProxyControlClient } from './proxy-control.ts';

/**
 * A fleet message Redis has not taken within this fails (the next reconcile sends the whole state
 * again): neither a hung Redis nor the offline queue of a down one holds messages for longer.
 */
const REDIS_COMMAND_TIMEOUT_MS = 2000;

/** Redis for fleet messages, and the admin token their signing key is derived from. */
export interface FleetRedisOptions {
  url: string;
  adminToken: string;
}

/**
 * Tells the proxies which workers to route to: over each known proxy's control API (this host's
 * from the config; with Redis every proxy a ProxyDirectory discovered), and with REDIS_URL also on the `switchyard:fleet` channel plus the state hash, so
 * every subscribed proxy, on any host, applies the same drains. Redis messages and hash entries
 * are signed (lib/fleet-signing.ts).
 */
export class FleetPublisher {
  private readonly redis: Redis | undefined;
  private readonly key: Buffer | undefined;
  /** time of the last message: strictly increasing, so proxies can refuse anything not newer */
  private lastAt = 0;
  private readonly unreachable = new Set<string>();
  /** Proxy writes run one after another, so they land in the order the fleet changed. */
  private writes: Promise<void> = Promise.resolve();

  private readonly currentProxies: () => ProxyControlClient[];

  /** `proxies`: a fixed list, or a function asked at each use (the proxies a ProxyDirectory knows now) */
  constructor(
    proxies: ProxyControlClient[] | (() => ProxyControlClient[]),
    redis: FleetRedisOptions | undefined,
    private readonly log: Logger,
  ) {
    this.currentProxies = typeof proxies === 'function' ? proxies : () => proxies;
    if (redis) {
      this.key = fleetKey(redis.adminToken);
      this.redis = new Redis(redis.url, { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
      this.redis.on('error', (error: Error) => this.log.debug({ err: error.message }, 'fleet publisher: Redis error'));
    }
  }

  /** The proxies drains go to over the control API right now. */
  get proxies(): ProxyControlClient[] {
    return this.currentProxies();
  }

  /**
   * Pushes these states to every proxy that answers, after everything published before. Redis gets
   * them in the same order but is not waited for: a Redis that is down or hung never holds up the
   * proxies on this host (measured with Redis frozen: no drain reached the proxy at all).
   */
  publish(states: Record<string, ProxyWorkerState>): Promise<void> {
    return this.inOrder(() => {
      void this.publishOnRedis(states);
      return Promise.all(
        this.proxies.map((proxy) =>
          this.reach(proxy, () => Promise.all(Object.entries(states).map(([worker, state]) => proxy.setWorkerState(worker, state)))),
        ),
      );
    });
  }

  /**
   * Brings every proxy in line with `desired()` (a restarted proxy starts with all workers ready).
   * Runs in the same order as publish(): a drain decided meanwhile is pushed after this, never overwritten by it.
   */
  reconcile(desired: () => Record<string, ProxyWorkerState>): Promise<void> {
    return this.inOrder(async () => {
      const proxies = this.proxies;
      const current = new Set(proxies.map((proxy) => proxy.baseUrl));
      for (const url of this.unreachable) if (!current.has(url)) this.unreachable.delete(url); // a proxy no longer known
      const views = await Promise.all(proxies.map((proxy) => this.reach(proxy, async () => workersOf(await proxy.state()))));
      const wanted = desired();
      void this.publishOnRedis(wanted);
      await Promise.all(
        proxies.map((proxy, i) => {
          const seen = views[i];
          if (!seen) return undefined;
          const stale = Object.entries(wanted).filter(([worker, state]) => seen.has(worker) && seen.get(worker)!.state !== state);
          return this.reach(proxy, () => Promise.all(stale.map(([worker, state]) => proxy.setWorkerState(worker, state))));
        }),
      );
    });
  }

  /** Resolves once everything published so far has reached the proxies (or failed). */
  settled(): Promise<void> {
    return this.writes;
  }

  /** Requests the reachable proxies still have in flight on this worker (after pending publishes landed). */
  async proxyInflight(worker: string): Promise<number> {
    await this.settled();
    const counts = await Promise.all(
      this.proxies.map((proxy) => this.reach(proxy, async () => workersOf(await proxy.state()).get(worker)?.inflight ?? 0)),
    );
    return counts.reduce<number>((sum, count) => sum + (count ?? 0), 0);
  }

  async close(): Promise<void> {
    this.redis?.disconnect();
  }

  private inOrder(write: () => Promise<unknown>): Promise<void> {
    this.writes = this.writes.then(write).then(
      () => undefined,
      (error: Error) => this.log.warn({ err: error.message }, 'fleet publisher: write failed'),
    );
    return this.writes;
  }

  /** Runs one call on a proxy; an unreachable proxy (stopped, restarting) is logged once and skipped. */
  private async reach<T>(proxy: ProxyControlClient, call: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await call();
      if (this.unreachable.delete(proxy.baseUrl)) this.log.info({ proxy: proxy.baseUrl }, 'proxy control API reachable again');
      return result;
    } catch (error) {
      if (!this.unreachable.has(proxy.baseUrl)) {
        this.unreachable.add(proxy.baseUrl);
        this.log.warn({ proxy: proxy.baseUrl, err: (error as Error).message }, 'proxy control API unreachable; will retry');
      }
      return undefined;
    }
  }

  private async publishOnRedis(states: Record<string, ProxyWorkerState>): Promise<void> {
    const { redis, key } = this;
    if (!redis || !key || Object.keys(states).length === 0) return;
    const at = (this.lastAt = Math.max(Date.now(), this.lastAt + 1));
    const entries = Object.fromEntries(Object.entries(states).map(([worker, state]) => [worker, signStateEntry(key, worker, state, at)]));
    try {
      await redis.multi().hset(FLEET_STATE_KEY, entries).publish(FLEET_CHANNEL, signFleetMessage(key, states, at)).exec();
    } catch (error) {
      this.log.debug({ err: (error as Error).message }, 'fleet publisher: Redis publish failed; the next reconcile retries');
    }
  }
}
