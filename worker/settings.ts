import path from 'node:path';
import type { SwitchyardConfig } from '../lib/config.ts';
import { siteOf } from '../lib/site.ts';

export interface WorkerSettings {
  host: string;
  /** 0 picks a free port (tests); PM2 sets PORT per instance */
  port: number;
  pool: string;
  index: number;
  /** the site host it runs on, on a site of several hosts */
  siteHost?: string;
  /** app requests processed at once; the app is not thread-safe, so 1 by default */
  concurrency: number;
  reposRoot: string;
  databaseUrl?: string;
  redisUrl?: string;
  cacheBytes: number;
  leakBytesPerRequest: number;
  shutdownTimeoutMs: number;
  /** HTTP keep-alive timeout, above the proxy's upstream idle timeout (4 s) */
  keepAliveTimeoutMs: number;
  /** largest git/hg protocol request body, counted after undoing its Content-Encoding */
  maxRequestBodyBytes: number;
}

type Env = Record<string, string | undefined>;

function integerFrom(env: Env, names: string[], fallback: number, min = 0): number {
  for (const name of names) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`${name}=${JSON.stringify(text)}: expected an integer >= ${min}`);
    return value;
  }
  return fallback;
}

export function workerSettings(config: SwitchyardConfig, env: Env = process.env): WorkerSettings {
  const pool = env.SWITCHYARD_POOL || 'web';
  const index = integerFrom(env, ['SWITCHYARD_WORKER_INDEX', 'NODE_APP_INSTANCE'], 0);
  const portBase = config.pools[pool]?.portBase ?? 9100;
  return {
    host: env.SWITCHYARD_WORKER_HOST || '127.0.0.1',
    port: integerFrom(env, ['PORT', 'SWITCHYARD_WORKER_PORT'], portBase + index),
    pool,
    index,
    siteHost: config.hosts ? siteOf(config, env).self.name : undefined,
    concurrency: integerFrom(env, ['SWITCHYARD_WORKER_CONCURRENCY'], 1, 1),
    reposRoot: config.worker.repos ?? path.join(config.data, 'repos'),
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    cacheBytes: config.worker.cacheBytes,
    leakBytesPerRequest: config.worker.leakBytesPerRequest,
    shutdownTimeoutMs: config.worker.shutdownTimeoutMs,
    keepAliveTimeoutMs: config.worker.keepAliveTimeoutMs,
    maxRequestBodyBytes: config.worker.maxRequestBodyBytes,
  };
}
