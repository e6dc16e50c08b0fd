import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WorkerContext } from '../context.ts';
import { hgEnv, mercurialPython } from '../vcs/env.ts';
import { cgiBaseVariables, httpHeaderVariables, runCgi } from './cgi.ts';
import { refusePush } from './refuse.ts';

const HGWEB_CGI = path.join(PROJECT_ROOT, 'worker', 'hgweb-cgi.py');
const PUSH_COMMANDS = new Set(['unbundle', 'pushkey']);

/** The Mercurial HTTP wire protocol (`/<repo>?cmd=...`) through hgweb run as CGI. */
export async function serveHgWireProtocol(
  ctx: WorkerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  repoName: string,
  command: string,
): Promise<void> {
  reply.hijack();
  if (PUSH_COMMANDS.has(command)) return refusePush(reply.raw, 'hg');
  const req = request.raw;
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
    res: reply.raw,
    children: ctx.children,
    log: request.log,
  });
}
