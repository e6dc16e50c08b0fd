import path from 'node:path';
import { cachedJson } from './cache/index.ts';
import type { WorkerContext } from './context.ts';
import { isValidRepoName } from './names.ts';
import type { RepoRecord } from './registry/index.ts';
import { GitRepo } from './vcs/git.ts';
import { HgRepo } from './vcs/hg.ts';
import type { PathEntry, RepoBackend } from './vcs/types.ts';

export interface OpenRepo {
  record: RepoRecord;
  backend: RepoBackend;
}

const FULL_ID = /^[0-9a-f]{40}$/;

export async function openRepo(ctx: WorkerContext, name: string): Promise<OpenRepo | undefined> {
  if (!isValidRepoName(name)) return undefined;
  const record = await ctx.registry.get(name);
  if (!record) return undefined;
  const dir = path.join(ctx.settings.reposRoot, name);
  const backend = record.kind === 'git' ? new GitRepo(dir, ctx.children) : new HgRepo(dir, ctx.children);
  return { record, backend };
}

/** rev -> full commit id; a full id is immutable, a name is cached only until a ref moves. */
export async function resolveRevision(ctx: WorkerContext, repo: OpenRepo, rev: string): Promise<string | undefined> {
  const state = FULL_ID.test(rev) ? 'id' : await repo.backend.fingerprint();
  const key = `resolve:${repo.record.name}:${state}:${rev}`;
  const found = await cachedJson(ctx.cache, key, async () => ({ id: (await repo.backend.resolve(rev)) ?? null }));
  return found.id ?? undefined;
}

/** The entry at a path of a commit; immutable, so cached by commit id. */
export async function entryAt(ctx: WorkerContext, repo: OpenRepo, commitId: string, entryPath: string): Promise<PathEntry | undefined> {
  const key = `entry:${repo.record.name}:${commitId}:${entryPath}`;
  const found = await cachedJson(ctx.cache, key, async () => ({ entry: (await repo.backend.entry(commitId, entryPath)) ?? null }));
  return found.entry ?? undefined;
}
