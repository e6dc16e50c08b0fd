import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WorkerContext } from '../context.ts';
import { openRepo } from '../repos.ts';
import { serveGitSmartHttp } from './git-http.ts';
import { hgWireCommand } from './hg-commands.ts';
import { serveHgWireProtocol } from './hg-http.ts';
import { repoSummary, sendNotFound } from './pages.ts';

// One URL per repository serves browsing and cloning, as in Kallithea: `/<repo>` is the summary
// page, `/<repo>?cmd=...` the Mercurial wire protocol, `/<repo>/info/refs` and
// `/<repo>/git-upload-pack` git smart HTTP.

type RepoParams = { repo: string };
type Query = Record<string, string | string[] | undefined>;

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function registerRepoRoutes(app: FastifyInstance, ctx: WorkerContext): void {
  const repoRoot = async (request: FastifyRequest, reply: FastifyReply) => {
    const { repo: name } = request.params as RepoParams;
    const repo = await openRepo(ctx, name);
    if (!repo) return sendNotFound(reply, `There is no repository called “${name}”.`);
    const wire = hgWireCommand(request.raw.url!);
    if (wire !== undefined) {
      if (repo.record.kind !== 'hg') return sendNotFound(reply, `${name} is not a Mercurial repository.`);
      return serveHgWireProtocol(ctx, request, reply, name, wire);
    }
    if (request.method === 'POST') return reply.code(405).header('allow', 'GET, HEAD').send();
    return repoSummary(ctx, request, reply, repo);
  };
  app.route({ method: ['GET', 'POST'], url: '/:repo', handler: repoRoot });

  const git = (pathSuffix: '/info/refs' | '/git-upload-pack', serviceOf: (request: FastifyRequest) => string | undefined) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const { repo: name } = request.params as RepoParams;
      const repo = await openRepo(ctx, name);
      if (!repo || repo.record.kind !== 'git') return sendNotFound(reply, `There is no git repository called “${name}”.`);
      return serveGitSmartHttp(ctx, request, reply, name, serviceOf(request) ?? '', pathSuffix);
    };
  app.get('/:repo/info/refs', git('/info/refs', (request) => single((request.query as Query).service)));
  app.post('/:repo/git-upload-pack', git('/git-upload-pack', () => 'git-upload-pack'));
  app.post('/:repo/git-receive-pack', git('/git-upload-pack', () => 'git-receive-pack'));
}
