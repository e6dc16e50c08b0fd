import { createHash } from 'node:crypto';
import type { Logger } from '../../lib/log.ts';
import { MemoryCache } from './memory-cache.ts';
import { RedisBackedCache } from './redis-cache.ts';
import type { ContentCache } from './types.ts';

export { cachedBuffer, cachedJson, type ContentCache } from './types.ts';

const SHARED_TTL_SEC = 600;

export function createContentCache(options: { maxBytes: number; redisUrl?: string; reposRoot: string; log: Logger }): ContentCache {
  const local = new MemoryCache(options.maxBytes);
  if (!options.redisUrl) return local;
  // workers serving the same repos directory share entries; other directories never collide
  const namespace = createHash('sha1').update(options.reposRoot).digest('hex').slice(0, 12);
  return new RedisBackedCache(options.redisUrl, local, `switchyard:worker:v1:${namespace}:`, SHARED_TTL_SEC, options.log);
}
