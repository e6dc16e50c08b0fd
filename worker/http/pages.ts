import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { cachedBuffer } from '../cache/index.ts';
import type { WorkerContext } from '../context.ts';
import { isValidRevision, normaliseRepoPath } from '../names.ts';
import { errorPage, filePage, repoListPage, summaryPage, treePage } from '../pages/views.ts';
import { entryAt, openRepo, resolveRevision, type OpenRepo } from '../repos.ts';
import type { PathEntry } from '../vcs/types.ts';
import { looksBinary, rawContentType } from './content-type.ts';
import { parseRange, sliceBytes } from './range.ts';

const RECENT_COMMITS = 20;
const INLINE_TEXT_LIMIT = 256 * 1024;
const IMAGE = /\.(png|jpe?g|gif|webp)$/i;

function sendHtml(reply: FastifyReply, page: Buffer, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page);
}

export function sendNotFound(reply: FastifyReply, message = 'There is no such repository, revision or path.'): FastifyReply {
  return sendHtml(reply, errorPage(404, 'Not found', message), 404);
}

function sendBadRequest(reply: FastifyReply, message: string): FastifyReply {
  return sendHtml(reply, errorPage(400, 'Bad request', message), 400);
}

function hostOf(request: FastifyRequest): string {
  const forwarded = request.headers['x-forwarded-host'];
  return (typeof forwarded === 'string' && forwarded.split(',')[0].trim()) || request.headers.host || 'localhost';
}

async function readPrefix(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= limit) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, limit);
}

/** A URL's revision and path, checked; undefined after a 400 has been sent. */
function validatedLocation(reply: FastifyReply, rev: string, rawPath: string): { rev: string; path: string } | undefined {
  const path = normaliseRepoPath(rawPath);
  if (!isValidRevision(rev) || path === undefined) {
    sendBadRequest(reply, 'The revision or path is not valid.');
    return undefined;
  }
  return { rev, path };
}

export async function repoSummary(ctx: WorkerContext, request: FastifyRequest, reply: FastifyReply, repo: OpenRepo): Promise<FastifyReply> {
  const host = hostOf(request);
  const key = `summary:${repo.record.name}:${await repo.backend.fingerprint()}:${host}`;
  const page = await cachedBuffer(ctx.cache, key, async () => {
    const defaultRevision = await repo.backend.defaultRevision();
    const headId = await repo.backend.resolve(defaultRevision);
    const [refs, commits] = headId
      ? await Promise.all([repo.backend.refs(), repo.backend.log(headId, RECENT_COMMITS)])
      : [{ branches: [], tags: [], bookmarks: [] }, []];
    if (headId) await ctx.registry.recordHead(repo.record.name, headId);
    return summaryPage({ repo: repo.record, host, defaultRevision, headId, refs, commits });
  });
  return sendHtml(reply, page);
}

async function fileView(ctx: WorkerContext, repo: OpenRepo, rev: string, commitId: string, entry: PathEntry): Promise<Buffer> {
  const image = IMAGE.test(entry.name);
  let text: string | undefined;
  if (!image && entry.type !== 'submodule' && (entry.size ?? 0) <= INLINE_TEXT_LIMIT) {
    const content = await readPrefix(repo.backend.openFile(commitId, entry), INLINE_TEXT_LIMIT);
    if (!looksBinary(content)) text = content.toString('utf8');
  }
  return filePage({ repo: repo.record.name, rev, entry, text, image });
}

async function streamRaw(request: FastifyRequest, reply: FastifyReply, repo: OpenRepo, commitId: string, entry: PathEntry) {
  const size = entry.size ?? 0;
  const range = parseRange(request.headers.range, size);
  if (range === 'unsatisfiable') {
    return reply.code(416).header('content-range', `bytes */${size}`).send();
  }
  let stream = repo.backend.openFile(commitId, entry);
  let contentType = rawContentType(entry.name);
  if (contentType === 'application/octet-stream' && size > 0) {
    // no telling extension: look at the first bytes, then put them back
    await once(stream, 'readable');
    const first = stream.read() as Buffer | null;
    if (first) {
      contentType = rawContentType(entry.name, first);
      stream.unshift(first);
    }
  }
  reply
    .header('content-type', contentType)
    .header('accept-ranges', 'bytes')
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'; sandbox")
    .header('etag', `"${commitId.slice(0, 20)}-${entry.objectId ?? size}"`);
  if (range) {
    stream = sliceBytes(stream, range);
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', range.end - range.start + 1);
  } else {
    reply.header('content-length', size);
  }
  return reply.send(stream);
}

export function registerPageRoutes(app: FastifyInstance, ctx: WorkerContext): void {
  app.get('/', async (request, reply) => sendHtml(reply, repoListPage(await ctx.registry.list(), hostOf(request))));

  const browse = (mode: 'tree' | 'raw') => async (request: FastifyRequest, reply: FastifyReply) => {
    const params = request.params as { repo: string; rev: string; '*'?: string };
    const repo = await openRepo(ctx, params.repo);
    if (!repo) return sendNotFound(reply, `There is no repository called “${params.repo}”.`);
    const location = validatedLocation(reply, params.rev, params['*'] ?? '');
    if (!location) return reply;
    const commitId = await resolveRevision(ctx, repo, location.rev);
    if (!commitId) return sendNotFound(reply, `${repo.record.name} has no revision “${location.rev}”.`);
    const entry = await entryAt(ctx, repo, commitId, location.path);
    if (!entry) return sendNotFound(reply, `${repo.record.name} has no path “${location.path}” at ${location.rev}.`);
    if (mode === 'raw') {
      if (entry.type === 'dir' || entry.type === 'submodule') return sendNotFound(reply, `“${location.path}” is not a file.`);
      return streamRaw(request, reply, repo, commitId, entry);
    }
    const key = `tree:${repo.record.name}:${commitId}:${location.rev}:${location.path}`;
    const page = await cachedBuffer(ctx.cache, key, async () =>
      entry.type === 'dir' ? treePage(repo.record.name, location.rev, entry) : fileView(ctx, repo, location.rev, commitId, entry),
    );
    return sendHtml(reply, page);
  };
  app.get('/:repo/tree/:rev', browse('tree'));
  app.get('/:repo/tree/:rev/*', browse('tree'));
  app.get('/:repo/raw/:rev/*', browse('raw'));
}
