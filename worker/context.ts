import type { Logger } from '../lib/log.ts';
import type { ContentCache } from './cache/index.ts';
import type { ChildProcesses } from './children.ts';
import type { DeliberateLeak } from './leak.ts';
import type { RepoRegistry } from './registry/index.ts';
import type { WorkerSettings } from './settings.ts';
import type { WorkerStats } from './stats.ts';

/** Everything a request handler may use; built once in main.ts (or by a test). */
export interface WorkerContext {
  settings: WorkerSettings;
  registry: RepoRegistry;
  cache: ContentCache;
  children: ChildProcesses;
  leak: DeliberateLeak;
  stats: WorkerStats;
  log: Logger;
}
