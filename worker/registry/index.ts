import { FsRepoRegistry } from './fs-registry.ts';
import { PgRepoRegistry } from './pg-registry.ts';
import type { RepoRegistry } from './types.ts';

export type { RepoRecord, RepoRegistry } from './types.ts';

export function createRepoRegistry(root: string, databaseUrl: string | undefined): RepoRegistry {
  return databaseUrl ? new PgRepoRegistry(databaseUrl, root) : new FsRepoRegistry(root);
}
