import type { SwitchyardConfig } from '../lib/config.ts';
import { pm2Apps } from '../lib/ecosystem.ts';
import { RESTART_TIMEOUT_MS } from '../supervisor/drain-coordinator.ts';
import type { Operation } from './operation-outcome.ts';

/** Polls, event delivery and PM2 starting the new process, beyond the supervisor's own bounds. */
const FOLLOW_MARGIN_MS = 5000;

/** A pool as GET /api/fleet describes it (the running supervisor's values, not this config's). */
export interface PoolLimits {
  name: string;
  drainTimeoutSec: number;
  maxUnavailable: number;
}

/**
 * How long following `operation` on `workers` workers of `pool` may take before it counts as
 * timed out: what the supervisor itself allows. A drain: drainTimeoutSec. A recycle: drainTimeoutSec,
 * PM2 stopping the old process (the app's kill_timeout) and the restarted worker's health check
 * (RESTART_TIMEOUT_MS), once per group of maxUnavailable workers, which recycle one group at a time.
 */
export function operationDeadlineMs(operation: Operation, pool: PoolLimits, workers: number, config: SwitchyardConfig): number {
  const drainMs = pool.drainTimeoutSec * 1000;
  if (operation === 'drain') return drainMs + FOLLOW_MARGIN_MS;
  const apps = pm2Apps(config, '').filter((app) => app.name.startsWith('worker-'));
  // a pool this config does not have (the supervisor's was reloaded since): the longest stop of any
  const stopMs = apps.find((app) => app.name === `worker-${pool.name}`)?.kill_timeout ?? Math.max(0, ...apps.map((app) => app.kill_timeout ?? 0));
  const rounds = Math.ceil(Math.max(workers, 1) / Math.max(pool.maxUnavailable, 1));
  return rounds * (drainMs + stopMs + RESTART_TIMEOUT_MS) + FOLLOW_MARGIN_MS;
}
