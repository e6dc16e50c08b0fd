import { diffConfig, summarizeChanges, undoChanges, type ConfigChange } from '../lib/config-diff.ts';
import type { PoolConfig, SwitchyardConfig } from '../lib/config.ts';

/** A supervised pool whose number of workers a reload changes (0: no supervised workers). */
export interface PoolResize {
  pool: string;
  from: number;
  to: number;
}

/** What a reloaded config means for the supervisor. */
export interface SupervisorReloadPlan {
  /** the config to run on from now: the new one, with every setting that cannot change live kept as it was */
  config: SwitchyardConfig;
  /** one line per change the supervisor applies (lib/config-diff.ts summaries) */
  changes: string[];
  /** one line per change that concerns the supervisor or the workers and needs a restart, with what applies it */
  notApplied: string[];
  /** supervised pools that start, grow, shrink or go; in the order of the new config, removed pools last */
  resizes: PoolResize[];
}

/** The settings the supervisor acts on, below `pools.<name>`; the rest of a pool is the proxy's. */
const SUPERVISOR_POOL_KEYS: ReadonlySet<string> = new Set(['instances', 'targets', 'recycle', 'drainTimeoutSec', 'maxUnavailable']);

const supervised = (pool: PoolConfig | undefined): boolean => Boolean(pool && !pool.targets);
const workersOf = (pool: PoolConfig | undefined): number => (pool && !pool.targets ? pool.instances : 0);

/** Does the supervisor act on this (live) change? */
function concernsSupervisor(change: ConfigChange, before: SwitchyardConfig, after: SwitchyardConfig): boolean {
  const [top, pool, setting] = change.key.split('.');
  if (top === 'supervisor') return true;
  if (top !== 'pools') return false;
  if (!supervised(before.pools[pool]) && !supervised(after.pools[pool])) return false; // static targets: the proxy's alone
  return setting === undefined || SUPERVISOR_POOL_KEYS.has(setting);
}

/**
 * Compares the running config with a new, validated one: what the supervisor applies, what it
 * cannot (reported, and kept as it was: never half-applied), and which pools' workers to start or
 * stop. Changes the proxies alone act on (lanes, classification, limits, static targets) are left
 * to their own reload. A change the proxy cannot take (its listen address) is the proxy's to
 * report, but the config returned keeps it as it was too.
 */
export function planSupervisorReload(before: SwitchyardConfig, after: SwitchyardConfig): SupervisorReloadPlan {
  const applied: ConfigChange[] = [];
  const kept: ConfigChange[] = [];
  for (const change of diffConfig(before, after)) {
    if (!change.live) kept.push(change);
    else if (concernsSupervisor(change, before, after)) applied.push(change);
  }
  const config = undoChanges(after, kept);
  const refused = kept.filter((change) => !change.key.startsWith('proxy.'));
  const names = [...Object.keys(config.pools), ...Object.keys(before.pools).filter((name) => !(name in config.pools))];
  const resizes = names
    .map((pool) => ({ pool, from: workersOf(before.pools[pool]), to: workersOf(config.pools[pool]) }))
    .filter((resize) => resize.from !== resize.to);
  return { config, changes: summarizeChanges(applied), notApplied: summarizeChanges(refused), resizes };
}
