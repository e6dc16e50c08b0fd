import type { FastifyInstance } from 'fastify';
import type { WorkerContext } from './context.ts';

/**
 * SIGTERM, SIGINT or PM2's "shutdown" message: stop accepting, let in-flight requests (a running
 * clone included) finish for up to shutdownTimeoutMs, then kill what is left and exit 0.
 */
export function installGracefulShutdown(app: FastifyInstance, ctx: WorkerContext): void {
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return ctx.log.info({ reason }, 'already shutting down');
    stopping = true;
    ctx.log.info({ reason, inflight: ctx.stats.inflight }, 'shutting down');
    const deadline = setTimeout(() => {
      ctx.log.warn({ inflight: ctx.stats.inflight, timeoutMs: ctx.settings.shutdownTimeoutMs }, 'shutdown timeout; aborting in-flight requests');
      ctx.children.killAll();
      app.server.closeAllConnections();
    }, ctx.settings.shutdownTimeoutMs);
    // keep-alive sockets that turn idle after their last response must not hold the close up
    const idleSweep = setInterval(() => app.server.closeIdleConnections(), 100);
    try {
      await app.close();
    } catch (error) {
      ctx.log.error({ err: error }, 'error while closing the server');
    }
    clearTimeout(deadline);
    clearInterval(idleSweep);
    await ctx.children.killAllAndWait();
    await Promise.allSettled([ctx.registry.close(), ctx.cache.close()]);
    ctx.log.info({ served: ctx.stats.served }, 'stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('message', (message) => {
    if (message === 'shutdown') void stop('pm2 shutdown message');
  });
}
