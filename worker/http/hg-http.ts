import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WorkerContext } from '../context.ts';
import { hgEnv, mercurialPython } from '../vcs/env.ts';
import { cgiBaseVariables, httpHeaderVariables, runCgi } from './cgi.ts';
import type { HgCommand } from './hg-commands.ts';
import { refuseRequest } from './plain-text.ts';
import { refusePush } from './refuse.ts';
import { openRequestBody } from './request-body.ts';

const HGWEB_CGI = path.join(PROJECT_ROOT, 'worker', 'hgweb-cgi.py');
const PUSH_COMMANDS = new Set(['unbundle', 'pushkey']);

/**
 * The Mercurial HTTP wire protocol (`/<repo>?cmd=...`) through hgweb run as CGI. `wire` is the
 * request's command as hg-commands.ts read it: only wire-protocol commands ever reach hgweb.
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
  // hgweb reads a body as it is (it never undoes a Content-Encoding): only the size limit applies
  const body = openRequestBody(req, ctx.settings.maxRequestBodyBytes, { decode: false });
  if (!body.ok) return refuseRequest(req, res, body.refused.status, body.refused.message);
  const repoDir = path.join(ctx.settings.reposRoot, repoName);
  const env = hgEnv({
    ...httpHeaderVariables(req),
    ...cgiBaseVariables(req),
    SCRIPT_NAME: `/${repoName}`,
    PATH_INFO: '/',
    SWITCHYARD_HG_REPO: repoDir,
  });
  await runCgi({
    command: mercurialPython(),
    args: [HGWEB_CGI],
    env,
    cwd: repoDir,
    req,
    body: body.body,
    res,
    children: ctx.children,
    log: request.log,
  });
}
