import type { FastifyInstance } from 'fastify';
import type { WorkerContext } from '../context.ts';
import type { RegistryStatus } from '../registry/index.ts';
import { OWN_STACK_ID } from '../../lib/stack-id.ts';
import type { WorkerHealthReport } from '../../lib/worker-health.ts';

export const HEALTH_PATH = '/_worker/health';

export interface WorkerHealth extends WorkerHealthReport {
  /** beyond the contract: what the cache and the deliberate leak hold */
  cacheBytes: number;
  leakedBytes: number;
  children: number;
  /** whether repositories come from PostgreSQL or, while it is unreachable, from disk (degraded) */
  registry: RegistryStatus;
}

export function healthOf(ctx: WorkerContext): WorkerHealth {
  const memory = process.memoryUsage();
  return {
    pid: process.pid,
    pool: ctx.settings.pool,
    index: ctx.settings.index,
    ...(ctx.settings.siteHost === undefined ? {} : { host: ctx.settings.siteHost }),
    inflight: ctx.stats.inflight,
    served: ctx.stats.served,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    uptimeSec: Math.round((Date.now() - ctx.stats.startedAt) / 1000),
    stack: OWN_STACK_ID,
    cacheBytes: ctx.cache.localBytes,
    leakedBytes: ctx.leak.retainedBytes,
    children: ctx.children.count,
    registry: ctx.registry.status(),
  };
}

export function registerHealthRoute(app: FastifyInstance, ctx: WorkerContext): void {
  app.get(HEALTH_PATH, async (_request, reply) => reply.header('cache-control', 'no-store').send(healthOf(ctx)));
}
