import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WorkerContext } from '../context.ts';
import { gitEnv } from '../vcs/env.ts';
import { cgiBaseVariables, runCgi } from './cgi.ts';
import { refuseRequest } from './plain-text.ts';
import { refusePush } from './refuse.ts';
import { openRequestBody } from './request-body.ts';

/** Git smart HTTP (both protocol v0/v1 and v2) through `git http-backend`. */
export async function serveGitSmartHttp(
  ctx: WorkerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  repoName: string,
  service: string,
  pathSuffix: '/info/refs' | '/git-upload-pack',
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  if (service === 'git-receive-pack') return refusePush(res, 'git');
  if (service !== 'git-upload-pack') {
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('unsupported git service\n');
    return;
  }
  const req = request.raw;
  const maxBytes = ctx.settings.maxRequestBodyBytes;
  const body = openRequestBody(req, maxBytes, { decode: true });
  if (!body.ok) return refuseRequest(req, res, body.refused.status, body.refused.message);
  const protocol = req.headers['git-protocol'];
  const env = gitEnv({
    ...cgiBaseVariables(req),
    GIT_PROJECT_ROOT: ctx.settings.reposRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: `/${repoName}${pathSuffix}`,
    // what `git -c` would set: no push over HTTP, partial clone allowed
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_0: 'http.receivepack',
    GIT_CONFIG_VALUE_0: 'false',
    GIT_CONFIG_KEY_1: 'uploadpack.allowFilter',
    GIT_CONFIG_VALUE_1: 'true',
    // http-backend buffers the body it reads, up to 10 MB by default, and refuses one that fills
    // its buffer: the worker hands on at most maxBytes (decompressed bodies included, which git
    // used to inflate without any limit), so the buffer is one byte larger
    GIT_HTTP_MAX_REQUEST_BUFFER: String(maxBytes + 1),
  });
  // git gets the body decoded: no HTTP_CONTENT_ENCODING, and no CONTENT_LENGTH that would
  // describe the compressed bytes (without one, http-backend reads to the end)
  if (body.decoded) delete env.CONTENT_LENGTH;
  if (typeof protocol === 'string') {
    env.GIT_PROTOCOL = protocol;
    env.HTTP_GIT_PROTOCOL = protocol;
  }
  await runCgi({
    command: 'git',
    args: ['http-backend'],
    env,
    cwd: ctx.settings.reposRoot,
    req,
    body: body.body,
    res,
    children: ctx.children,
    log: request.log,
  });
}
