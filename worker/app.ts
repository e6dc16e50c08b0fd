import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { WorkerContext } from './context.ts';
import { installAppLock } from './http/app-lock.ts';
import { installConnectionReuseHook } from './http/connection-reuse.ts';
import { registerHealthRoute } from './http/health.ts';
import { registerPageRoutes, sendNotFound } from './http/pages.ts';
import { registerRepoRoutes } from './http/repo-root.ts';
import { errorPage } from './pages/views.ts';

export function buildApp(ctx: WorkerContext): FastifyInstance {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    // app-lock.ts logs one line per request when its response is over (clones included)
    logController: new LogController({ disableRequestLogging: true }),
    keepAliveTimeout: ctx.settings.keepAliveTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 1000, ignoreTrailingSlash: true },
  });

  // Request bodies (git and hg protocol payloads) are never parsed: they stay unread streams that
  // the CGI bridges pipe into git and hg.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  installAppLock(app, ctx);
  installConnectionReuseHook(app);
  registerHealthRoute(app, ctx);
  registerPageRoutes(app, ctx);
  registerRepoRoutes(app, ctx);

  app.setNotFoundHandler((_request, reply) => sendNotFound(reply));
  app.setErrorHandler((error, request, reply) => {
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    if (reply.sent || reply.raw.headersSent) return;
    const title = status >= 500 ? 'Server error' : 'Bad request';
    const message = status >= 500 ? 'Something went wrong while reading the repository.' : 'The request is not valid.';
    return reply.code(status).type('text/html; charset=utf-8').send(errorPage(status, title, message));
  });
  return app;
}
