import type { FastifyInstance } from 'fastify';
import { withDeadline } from '../lib/deadline.ts';
import { EXIT_STOP_FORCED, handleStopRequests } from '../lib/process-stop.ts';
import type { WorkerContext } from './context.ts';

/** After in-flight requests were aborted, how long closing may still take before the worker exits anyway. */
const AFTER_ABORT_MS = 1000;
/** For the registry's and the cache's connections (PostgreSQL, Redis) to close. */
const CLOSE_STORES_MS = 1000;

/**
 * SIGTERM, SIGINT, PM2's "shutdown" message or PM2 going away: stop accepting, let in-flight
 * requests (a running clone included) finish for up to shutdownTimeoutMs, then kill what is left
 * and exit 0. Every step is bounded: a close that still hangs after the abort exits the process
 * (EXIT_STOP_FORCED) from the main thread, and a main thread that is stuck is SIGKILLed at
 * `deadlineMs` by the exit watchdog, git/hg process groups first. A second signal exits at once.
 */
export function installGracefulShutdown(app: FastifyInstance, ctx: WorkerContext, deadlineMs: number): void {
  handleStopRequests({ log: ctx.log, deadlineMs, stop: () => stopWorker(app, ctx) });
}

async function stopWorker(app: FastifyInstance, ctx: WorkerContext): Promise<void> {
  ctx.log.info({ inflight: ctx.stats.inflight }, 'shutting down');
  let forcedExit: NodeJS.Timeout | undefined;
  const abort = setTimeout(() => {
    ctx.log.warn({ inflight: ctx.stats.inflight, timeoutMs: ctx.settings.shutdownTimeoutMs }, 'shutdown timeout; aborting in-flight requests');
    ctx.children.killAll();
    app.server.closeAllConnections();
    forcedExit = setTimeout(() => {
      ctx.log.error({ afterMs: AFTER_ABORT_MS }, 'the server did not close after the abort; exiting');
      process.exit(EXIT_STOP_FORCED);
    }, AFTER_ABORT_MS);
  }, ctx.settings.shutdownTimeoutMs);
  // keep-alive sockets that turn idle after their last response must not hold the close up
  const idleSweep = setInterval(() => app.server.closeIdleConnections(), 100);
  try {
    await app.close();
  } catch (error) {
    ctx.log.error({ err: error }, 'error while closing the server');
  } finally {
    clearTimeout(abort);
    clearTimeout(forcedExit);
    clearInterval(idleSweep);
  }
  await ctx.children.killAllAndWait();
  await withDeadline(Promise.allSettled([ctx.registry.close(), ctx.cache.close()]), CLOSE_STORES_MS, 'closing the registry and cache').catch(
    (error: Error) => ctx.log.warn({ err: error.message }, 'closing the stores'),
  );
  ctx.log.info({ served: ctx.stats.served }, 'stopped');
}
