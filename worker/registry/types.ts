import type { DiscoveredRepo } from './discover.ts';

export interface RepoRecord extends DiscoveredRepo {
  /** the head the worker last saw on the repository's default revision */
  lastHead?: string;
}

/**
 * Where the worker looks up repositories: the filesystem alone, or a PostgreSQL registry kept in
 * step with it. Pages and protocol handlers only ever use this interface.
 */
export interface RepoRegistry {
  list(): Promise<RepoRecord[]>;
  get(name: string): Promise<RepoRecord | undefined>;
  recordHead(name: string, head: string): Promise<void>;
  close(): Promise<void>;
}
