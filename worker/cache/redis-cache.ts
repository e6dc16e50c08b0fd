import { Redis } from 'ioredis';
import type { Logger } from '../../lib/log.ts';
import type { ContentCache } from './types.ts';

/**
 * A Redis command unanswered after this fails: a hung Redis (stopped with SIGSTOP, swapping, a
 * half-open connection) keeps its connection "ready", and without a bound every page that missed
 * the local cache waited forever, holding its worker's slot.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 500;
/** After a failed command, Redis is left alone this long: a hung one costs one timeout per interval, not one per page. */
export const REDIS_RETRY_AFTER_MS = 5000;

/**
 * The in-process LRU in front of Redis: a worker's hits stay local, misses are shared by the whole
 * fleet through Redis with a TTL. Redis being down or hung only costs the shared hits (and at most
 * one bounded wait every few seconds), never a request.
 */
export class RedisBackedCache implements ContentCache {
  private readonly redis: Redis;
  private warned = false;
  private skipUntil = 0;

  constructor(
    url: string,
    private readonly local: ContentCache,
    private readonly prefix: string,
    private readonly ttlSec: number,
    private readonly log: Logger,
  ) {
    this.redis = new Redis(url, {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2000,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    });
    this.redis.on('error', (error: Error) => this.warnOnce(error));
    this.redis.on('ready', () => {
      if (this.warned) this.log.info('redis cache reachable again');
      this.warned = false;
      this.skipUntil = 0;
    });
  }

  private failed(error: Error): void {
    this.skipUntil = Date.now() + REDIS_RETRY_AFTER_MS;
    this.warnOnce(error);
  }

  private warnOnce(error: Error): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn({ err: error.message }, 'redis cache unavailable; using the local cache only');
  }

  private get skipping(): boolean {
    return Date.now() < this.skipUntil;
  }

  /** A command that answered: a Redis that was hung is back (its connection never dropped, so no 'ready' says so). */
  private answered(): void {
    if (this.skipUntil === 0) return;
    this.skipUntil = 0;
    if (this.warned) this.log.info('redis cache reachable again');
    this.warned = false;
  }

  async get(key: string): Promise<Buffer | undefined> {
    const local = await this.local.get(key);
    if (local || this.skipping) return local;
    try {
      const shared = await this.redis.getBuffer(this.prefix + key);
      this.answered();
      if (!shared) return undefined;
      await this.local.set(key, shared);
      return shared;
    } catch (error) {
      this.failed(error as Error);
      return undefined;
    }
  }

  async set(key: string, value: Buffer): Promise<void> {
    await this.local.set(key, value);
    if (this.skipping) return;
    try {
      await this.redis.set(this.prefix + key, value, 'EX', this.ttlSec);
      this.answered();
    } catch (error) {
      this.failed(error as Error);
    }
  }

  get localBytes(): number {
    return this.local.localBytes;
  }

  async close(): Promise<void> {
    await this.local.close();
    this.redis.disconnect();
  }
}
