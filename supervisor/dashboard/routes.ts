import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../lib/log.ts';
import type { Supervisor } from '../supervisor.ts';
import { sameOrigin, type Access } from './access.ts';
import { loadAssets, pageTemplate } from './assets.ts';
import { verdictOf } from './gate.ts';
import { DashboardHub, type HubOptions } from './hub.ts';
import { LiveState, type LiveStateOptions } from './live-state.ts';
import { sessionCookie } from './sessions.ts';

const PUBLIC_ASSETS = ['/assets/style.css', '/assets/favicon.svg'];
/** Routes anyone may load: the login form and what it needs to look right. */
export const DASHBOARD_PUBLIC_ROUTES = ['/login', ...PUBLIC_ASSETS];

export interface DashboardOptions {
  live?: Partial<LiveStateOptions>;
  hub?: Partial<HubOptions>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** the dashboard's live model and WebSocket hub (tests look at the hub's buffers) */
    dashboard: { live: LiveState; hub: DashboardHub };
  }
}

const HISTORY_MAX_DAYS = 31;

function isSecure(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

/**
 * The dashboard on the supervisor's fastify app: pages, assets, login / logout, the live state
 * (also as JSON), lane history, and the WebSocket hub on the same server.
 */
export function registerDashboard(
  app: FastifyInstance,
  { supervisor, access, log, options = {} }: { supervisor: Supervisor; access: Access; log: Logger; options?: DashboardOptions },
): void {
  const assets = loadAssets();
  const indexPage = pageTemplate('index.html');
  const loginPage = pageTemplate('login.html');
  const live = new LiveState(supervisor, options.live);
  const hub = new DashboardHub(live, access, log.child({ component: 'dashboard' }), options.hub);
  app.decorate('dashboard', { live, hub });

  app.addHook('onReady', async () => {
    await live.start();
    hub.attach(app.server);
  });
  // Before the server closes: it would wait for every open WebSocket to go away by itself.
  app.addHook('preClose', async () => hub.close());
  app.addHook('onClose', async () => live.stop());

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );

  const html = (reply: FastifyReply, status: number, text: string) => reply.code(status).type('text/html; charset=utf-8').send(text);

  app.get('/', async (request, reply) => {
    const verdict = verdictOf(request);
    return html(reply, 200, indexPage({ csrf: verdict?.via === 'session' ? verdict.session.csrf : '' }));
  });

  app.get('/login', async (_request, reply) => html(reply, 200, loginPage({ message: '' })));

  app.post<{ Body: { token?: unknown } | undefined }>('/login', async (request, reply) => {
    // A cross-site form could otherwise log the browser in with a token of the attacker's choosing.
    if (request.headers.origin !== undefined && !sameOrigin(request.headers, isSecure(request))) return reply.code(403).send({ error: 'cross-origin login refused' });
    const token = typeof request.body?.token === 'string' ? request.body.token : '';
    const result = access.login(token, request.ip);
    if (!result.ok) {
      if (result.status === 429) {
        reply.header('retry-after', String(result.retryAfterSec));
        return html(reply, 429, loginPage({ message: `Too many wrong tokens. Try again in ${result.retryAfterSec} s.` }));
      }
      return html(reply, 401, loginPage({ message: 'That is not the admin token.' }));
    }
    log.info({ client: request.ip }, 'dashboard login');
    return reply.header('set-cookie', sessionCookie(result.session, isSecure(request))).redirect('/', 303);
  });

  app.post('/logout', async (request, reply) => {
    const verdict = verdictOf(request);
    reply.header('set-cookie', sessionCookie(undefined, isSecure(request)));
    if (verdict?.via === 'session') {
      hub.endSession(verdict.session.id);
      try {
        access.sessions.revoke(verdict.session);
      } catch (error) {
        log.error({ err: (error as Error).message }, 'dashboard logout not saved: the session works again after a supervisor restart');
        return reply.code(500).send({ error: `logged out until the supervisor restarts: saving the logout failed (${(error as Error).message})` });
      }
    }
    return reply.code(204).send();
  });

  const serveAsset = async (request: FastifyRequest, reply: FastifyReply) => {
    const asset = assets.get(request.url.split('?')[0]);
    if (!asset) return reply.code(404).send({ error: 'no such asset' });
    return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
  };
  // Own routes for the public ones: the gate matches route patterns, and '/assets/*' is not public.
  for (const route of PUBLIC_ASSETS) app.get(route, serveAsset);
  app.get('/assets/*', serveAsset);

  app.get('/api/dashboard', async () => live.snapshot());

  app.get<{ Querystring: { since?: string; lane?: string } }>('/api/lanes/history', async (request, reply) => {
    const since = new Date(request.query.since ?? '');
    if (Number.isNaN(since.getTime())) return reply.code(400).send({ error: 'since must be an ISO date' });
    const earliest = Date.now() - HISTORY_MAX_DAYS * 86_400_000;
    try {
      const minutes = await supervisor.laneHistory(new Date(Math.max(since.getTime(), earliest)), request.query.lane);
      return { minutes };
    } catch (error) {
      return reply.code(503).send({ error: `history unavailable: ${(error as Error).message}` });
    }
  });
}
