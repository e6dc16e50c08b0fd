import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WorkerContext } from '../context.ts';
import type { HgCommand } from './hg-commands.ts';
import { forwardToHgweb } from './hgweb-forward.ts';
import { HgwebServer } from './hgweb-server.ts';
import { refuseRequest } from './plain-text.ts';
import { refusePush } from './refuse.ts';
import { hasBody, openRequestBody } from './request-body.ts';

const PUSH_COMMANDS = new Set(['unbundle', 'pushkey']);

const servers = new WeakMap<WorkerContext, HgwebServer>();

/** The worker's long-lived hgweb server (one per worker context), created on first use. */
export function hgwebServerOf(ctx: WorkerContext): HgwebServer {
  let server = servers.get(ctx);
  if (!server) servers.set(ctx, (server = new HgwebServer(ctx.children, ctx.settings.reposRoot, ctx.log)));
  return server;
}

/**
 * The Mercurial HTTP wire protocol (`/<repo>?cmd=...`) through the worker's hgweb server. `wire`
 * is the request's command as hg-commands.ts read it: only wire-protocol commands ever reach
 * hgweb, never a push.
 */
export async function serveHgWireProtocol(
  ctx: WorkerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  repoName: string,
  wire: HgCommand,
): Promise<void> {
  reply.hijack();
  const req = request.raw;
  const res = reply.raw;
  if (!wire.ok) return refuseRequest(req, res, wire.status, wire.message);
  if (PUSH_COMMANDS.has(wire.command)) return refusePush(res, 'hg');
  // hg clients always say how long their body is; hgweb cannot read one that does not
  if (hasBody(req) && req.headers['content-length'] === undefined) {
    return refuseRequest(req, res, 411, 'A Mercurial request body needs a Content-Length.');
  }
  // hgweb reads a body as it is (it never undoes a Content-Encoding): only the size limit applies
  const body = openRequestBody(req, ctx.settings.maxRequestBodyBytes, { decode: false });
  if (!body.ok) return refuseRequest(req, res, body.refused.status, body.refused.message);
  const server = hgwebServerOf(ctx);
  // a second try only for a server that died just before the first one (see forwardToHgweb)
  for (let attempt = 1; ; attempt++) {
    let port: number;
    try {
      port = await server.port();
    } catch (error) {
      body.body?.destroy(new Error('no hgweb server')); // the rest of the request is read and thrown away
      request.log.error({ err: (error as Error).message }, 'no hgweb server for a Mercurial request');
      return refuseRequest(req, res, 503, 'The Mercurial service is not available right now; try again.');
    }
    if ((await forwardToHgweb({ port, repoName, req, body: body.body, res, log: request.log })) === 'done') return;
    server.forget(port);
    if (attempt === 2) {
      request.log.error({ port }, 'the hgweb server did not accept the request');
      return refuseRequest(req, res, 502, 'The Mercurial service failed to answer; try again.');
    }
  }
}
