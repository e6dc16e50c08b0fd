import type { FastifyInstance } from 'fastify';
import type { WorkerContext } from '../context.ts';
import { Semaphore } from '../semaphore.ts';
import { HEALTH_PATH } from './health.ts';

/**
 * The app is not thread-safe (like Kallithea with embedded Mercurial): app requests take a lock,
 * SWITCHYARD_WORKER_CONCURRENCY at a time, and hold it until their response is over, a running
 * clone included. Health checks bypass it, so a worker busy with a clone still answers them.
 */
export function installAppLock(app: FastifyInstance, ctx: WorkerContext): void {
  const lock = new Semaphore(ctx.settings.concurrency);
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === HEALTH_PATH || request.url.startsWith(`${HEALTH_PATH}?`)) return;
    const started = Date.now();
    ctx.stats.inflight++;
    ctx.leak.onRequest();
    let release: (() => void) | undefined;
    let closed = false;
    reply.raw.once('close', () => {
      closed = true;
      release?.();
      ctx.stats.inflight--;
      ctx.stats.served++;
      request.log.info(
        { method: request.method, url: request.url, status: reply.raw.statusCode, ms: Date.now() - started, complete: reply.raw.writableFinished },
        'request done',
      );
    });
    release = await lock.acquire();
    if (closed) release();
  });
}
