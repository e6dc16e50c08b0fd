import type { Logger } from '../../lib/log.ts';
import { FailoverRegistry } from './failover-registry.ts';
import { FsRepoRegistry } from './fs-registry.ts';
import { PgRepoRegistry } from './pg-registry.ts';
import type { RepoRegistry } from './types.ts';

export type { RegistryStatus, RepoRecord, RepoRegistry } from './types.ts';

/** The filesystem alone, or PostgreSQL with the filesystem to fall back on while it is unreachable. */
export function createRepoRegistry(root: string, databaseUrl: string | undefined, log: Logger): RepoRegistry {
  if (!databaseUrl) return new FsRepoRegistry(root);
  const pg = new PgRepoRegistry(databaseUrl, root, undefined, (error) =>
    log.debug({ err: error.message }, 'registry: idle PostgreSQL connection lost'),
  );
  return new FailoverRegistry(pg, new FsRepoRegistry(root), log);
}
