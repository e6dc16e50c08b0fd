import type { DiscoveredRepo } from './discover.ts';

export interface RepoRecord extends DiscoveredRepo {
  /** the head the worker last saw on the repository's default revision */
  lastHead?: string;
}

/** What /_worker/health says about the registry. */
export interface RegistryStatus {
  backend: 'postgresql' | 'filesystem';
  /**
   * PostgreSQL is configured but unreachable: repositories are served from disk and what the
   * last PostgreSQL answers said, and PostgreSQL is retried in the background
   */
  degraded: boolean;
  /** when the outage was noticed (ISO 8601) */
  degradedSince?: string;
  /** why PostgreSQL failed */
  lastError?: string;
}

/**
 * Where the worker looks up repositories: the filesystem alone, or a PostgreSQL registry kept in
 * step with it. Pages and protocol handlers only ever use this interface.
 */
export interface RepoRegistry {
  list(): Promise<RepoRecord[]>;
  get(name: string): Promise<RepoRecord | undefined>;
  recordHead(name: string, head: string): Promise<void>;
  status(): RegistryStatus;
  close(): Promise<void>;
}
