import { Redis } from 'ioredis';
import type { Logger } from '../../lib/log.ts';
import type { ContentCache } from './types.ts';

/**
 * The in-process LRU in front of Redis: a worker's hits stay local, misses are shared by the whole
 * fleet through Redis with a TTL. Redis being down only costs the shared hits, never a request.
 */
export class RedisBackedCache implements ContentCache {
  private readonly redis: Redis;
  private warned = false;

  constructor(
    url: string,
    private readonly local: ContentCache,
    private readonly prefix: string,
    private readonly ttlSec: number,
    private readonly log: Logger,
  ) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 });
    this.redis.on('error', (error: Error) => this.warnOnce(error));
    this.redis.on('ready', () => {
      if (this.warned) this.log.info('redis cache reachable again');
      this.warned = false;
    });
  }

  private warnOnce(error: Error): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn({ err: error.message }, 'redis cache unavailable; using the local cache only');
  }

  async get(key: string): Promise<Buffer | undefined> {
    const local = await this.local.get(key);
    if (local) return local;
    try {
      const shared = await this.redis.getBuffer(this.prefix + key);
      if (!shared) return undefined;
      await this.local.set(key, shared);
      return shared;
    } catch (error) {
      this.warnOnce(error as Error);
      return undefined;
    }
  }

  async set(key: string, value: Buffer): Promise<void> {
    await this.local.set(key, value);
    try {
      await this.redis.set(this.prefix + key, value, 'EX', this.ttlSec);
    } catch (error) {
      this.warnOnce(error as Error);
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
