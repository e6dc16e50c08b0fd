import type { PoolConfig } from '../lib/config.ts';

export const RECYCLE_REASONS = ['requests', 'age', 'rss', 'manual', 'roll'] as const;
export type RecycleReason = (typeof RECYCLE_REASONS)[number];

/** One worker process's limits; 0 means no limit. */
export interface RecycleThresholds {
  maxRequests: number;
  maxAgeSec: number;
  maxRssBytes: number;
}

/** What the worker reports about itself at /_worker/health (the part the policy needs). */
export interface WorkerUsage {
  served: number;
  uptimeSec: number;
  rssBytes: number;
}

const MB = 1024 * 1024;

/**
 * The limits of one worker process. Each process draws its own `draw` in [0, 1) at start, and its
 * limits are lowered by up to `jitter` of the pool's, so workers started together do not all
 * reach their limit together. Limits only go down: the configured ones are upper bounds.
 */
export function thresholdsFor(recycle: PoolConfig['recycle'], draw: number): RecycleThresholds {
  const scale = 1 - recycle.jitter * Math.min(Math.max(draw, 0), 1);
  const scaled = (limit: number) => (limit > 0 ? Math.max(1, Math.floor(limit * scale)) : 0);
  return {
    maxRequests: scaled(recycle.maxRequests),
    maxAgeSec: scaled(recycle.maxAgeSec),
    maxRssBytes: scaled(recycle.maxRssMb * MB),
  };
}

/** Why this worker should be recycled now, or undefined. RSS first: it protects the host. */
export function recycleReason(limits: RecycleThresholds, usage: WorkerUsage): RecycleReason | undefined {
  if (limits.maxRssBytes > 0 && usage.rssBytes >= limits.maxRssBytes) return 'rss';
  if (limits.maxRequests > 0 && usage.served >= limits.maxRequests) return 'requests';
  if (limits.maxAgeSec > 0 && usage.uptimeSec >= limits.maxAgeSec) return 'age';
  return undefined;
}
