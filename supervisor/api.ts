import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../lib/log.ts';
import { Access, type AccessOptions } from './dashboard/access.ts';
import { authGate, securityHeaders } from './dashboard/gate.ts';
import { DASHBOARD_PUBLIC_ROUTES, registerDashboard, type DashboardOptions } from './dashboard/routes.ts';
import { ReloadRefused } from './config-reload.ts';
import { FleetActionError } from './drain-coordinator.ts';
import { FORWARDED_HEADER, forwardPoolAction, forwardWorkerAction } from './site-forward.ts';
import type { Supervisor } from './supervisor.ts';

export interface ApiOptions {
  supervisor: Supervisor;
  token: string;
  log: Logger;
  /** the data directory: logouts are kept there across restarts (without it, in memory only) */
  dataDir?: string;
  /** tests tune sessions, rate limits and push timing here */
  access?: AccessOptions;
  dashboard?: DashboardOptions;
}

/** Routes that need no authentication. */
const PUBLIC_ROUTES = new Set(['/healthz', ...DASHBOARD_PUBLIC_ROUTES]);

function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof FleetActionError) return reply.code(error.status).send({ error: error.message });
  if (error instanceof ReloadRefused) return reply.code(error.status).send(error.body);
  throw error;
}

/**
 * The supervisor's HTTP API (DESIGN.md): fleet, events, drain / recycle / roll, Prometheus metrics,
 * and the live dashboard (supervisor/dashboard/). Every route but PUBLIC_ROUTES needs the admin
 * token or a dashboard session.
 */
export function buildApi({ supervisor, token, log, dataDir, access: accessOptions, dashboard }: ApiOptions): FastifyInstance {
  const sessionsFile = dataDir && path.join(dataDir, 'dashboard-sessions.json');
  const access = new Access(token, { sessionsFile, log, ...accessOptions });
  const app = Fastify({
    loggerInstance: log.child({ component: 'supervisor-api' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });

  app.addHook('onRequest', authGate(access, PUBLIC_ROUTES));
  app.addHook('onSend', securityHeaders);

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/api/fleet', async () => supervisor.snapshot());

  app.get<{ Querystring: { since?: string; after?: string; limit?: string } }>('/api/events', async (request, reply) => {
    const limit = request.query.limit ? Math.min(Math.max(Number(request.query.limit) || 1, 1), 10_000) : undefined;
    // Beyond DESIGN.md: `after=<id>` follows this process's events (the cursor a fleet action answers with).
    if (request.query.after !== undefined) {
      if (request.query.since !== undefined) return reply.code(400).send({ error: 'since and after cannot be combined' });
      if (!/^\d{1,15}$/.test(request.query.after)) return reply.code(400).send({ error: 'after must be an event id (0 or more)' });
      return supervisor.events.after(Number(request.query.after), limit);
    }
    const since = request.query.since ? new Date(request.query.since) : undefined;
    if (since && Number.isNaN(since.getTime())) return reply.code(400).send({ error: 'since must be an ISO date' });
    return supervisor.events.since(since, limit);
  });

  // On a site of several hosts, an action for another host's worker is that host's supervisor's to run.
  const passOn = async (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    if (supervisor.fleet.get(request.params.name) || request.headers[FORWARDED_HEADER] !== undefined) return undefined;
    const answer = await forwardWorkerAction(supervisor.siteView, request.params.name, request.url, token);
    return answer && reply.code(answer.status).send(answer.body);
  };

  app.post<{ Params: { name: string } }>('/api/workers/:name/drain', async (request, reply) => {
    const passed = await passOn(request, reply);
    if (passed) return passed;
    try {
      const eventCursor = supervisor.events.cursor();
      const started = await supervisor.coordinator.drain(request.params.name);
      return reply.code(202).send({ worker: request.params.name, state: supervisor.fleet.get(request.params.name)?.state, started, eventCursor });
    } catch (error) {
      return sendError(reply, error);
    }
  });

  // Beyond DESIGN.md: puts a manually drained worker back into rotation.
  app.post<{ Params: { name: string } }>('/api/workers/:name/ready', async (request, reply) => {
    const passed = await passOn(request, reply);
    if (passed) return passed;
    try {
      supervisor.coordinator.undrain(request.params.name);
      await supervisor.siteView?.flush(); // the site's leases count it ready before the answer: a drain asked next may go
      return { worker: request.params.name, state: 'ready' };
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.post<{ Params: { name: string } }>('/api/workers/:name/recycle', async (request, reply) => {
    const passed = await passOn(request, reply);
    if (passed) return passed;
    try {
      const eventCursor = supervisor.events.cursor();
      const queued = supervisor.coordinator.requestRecycle(request.params.name, 'manual');
      return reply.code(202).send({ worker: request.params.name, queued, alreadyPending: !queued, eventCursor });
    } catch (error) {
      return sendError(reply, error);
    }
  });

  // On a site of several hosts, a roll covers every host that runs the pool: each host's supervisor
  // rolls its own workers, all under the site-wide leases; `hosts` says where to follow the others.
  app.post<{ Params: { pool: string } }>('/api/pools/:pool/roll', async (request, reply) => {
    const { pool } = request.params;
    const others = request.headers[FORWARDED_HEADER] === undefined ? await forwardPoolAction(supervisor.siteView, pool, request.url, token) : [];
    const local = supervisor.fleet.pools.get(pool);
    if (!local && others.length > 0) return reply.code(202).send({ pool, queued: [], alreadyPending: [], eventCursor: supervisor.events.cursor(), hosts: others });
    try {
      const eventCursor = supervisor.events.cursor();
      const queued = supervisor.coordinator.roll(pool);
      const alreadyPending = local!.workers.map((worker) => worker.name).filter((name) => !queued.includes(name));
      return reply.code(202).send({ pool, queued, alreadyPending, eventCursor, ...(supervisor.siteView ? { host: supervisor.site.self.name, hosts: others } : {}) });
    } catch (error) {
      return sendError(reply, error);
    }
  });

  // Beyond DESIGN.md's routes (issue 20): re-reads the config file, applies it here and to every known proxy.
  app.post('/api/reload', async (_request, reply) => {
    try {
      return await supervisor.reload('api');
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', supervisor.metrics.registry.contentType).send(await supervisor.metricsText()),
  );

  registerDashboard(app, { supervisor, access, log, options: dashboard });

  return app;
}
