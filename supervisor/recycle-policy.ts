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

/** The limit a worker is nearest to, and how much of it is left (requests, seconds or bytes). */
export interface NextRecycle {
  reason: 'requests' | 'age' | 'rss';
  left: number;
  /** the share of that limit used, 0 to 1 (1: it is due) */
  used: number;
}

/**
 * Which limit this worker will reach first, judged by the share of each already used (requests
 * and RSS grow at rates we do not know, so a share is the one measure they have in common); on a
 * tie the order of recycleReason. Undefined when the pool sets no limit.
 */
export function nextRecycle(limits: RecycleThresholds, usage: WorkerUsage): NextRecycle | undefined {
  const candidates: Array<[NextRecycle['reason'], number, number]> = [
    ['rss', limits.maxRssBytes, usage.rssBytes],
    ['requests', limits.maxRequests, usage.served],
    ['age', limits.maxAgeSec, usage.uptimeSec],
  ];
  let nearest: NextRecycle | undefined;
  for (const [reason, limit, value] of candidates) {
    if (limit <= 0) continue;
    const used = Math.min(Math.max(value / limit, 0), 1);
    if (!nearest || used > nearest.used) nearest = { reason, left: Math.max(limit - value, 0), used };
  }
  return nearest;
}
