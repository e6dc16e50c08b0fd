import { diffConfig, summarizeChanges, undoChanges, type ConfigChange } from '../lib/config-diff.ts';
import { ConfigError, type SwitchyardConfig } from '../lib/config.ts';

/** What a reload did: the changes applied, and those a running proxy cannot take (left as they were). */
export interface ReloadResult {
  applied: ConfigChange[];
  notApplied: ConfigChange[];
}

/** A reload from the config file, as the control API answers it and SIGHUP logs it. */
export type ReloadOutcome =
  | { ok: true; changes: string[]; notApplied: string[] }
  /** the file is invalid (ConfigError's problems, as check-config prints them): nothing changed */
  | { ok: false; error: string; problems: string[] };

/**
 * The config a reload runs with: `next`, except every change that cannot be made live, which
 * keeps the running value, so that nothing is half-applied (a new data dir does not move the
 * spool with it). Splits the changes into those two kinds.
 */
export function planReload(current: SwitchyardConfig, next: SwitchyardConfig): ReloadResult & { config: SwitchyardConfig } {
  const changes = diffConfig(current, next);
  const notApplied = changes.filter((change) => !change.live);
  return { config: undoChanges(next, notApplied), applied: changes.filter((change) => change.live), notApplied };
}

/**
 * Loads the config (the file the proxy started with) and applies it; an invalid file changes
 * nothing and is answered with its problems.
 */
export function reloadFrom(load: () => SwitchyardConfig, apply: (next: SwitchyardConfig) => ReloadResult): ReloadOutcome {
  let next: SwitchyardConfig;
  try {
    next = load();
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, error: `invalid configuration in ${error.file}`, problems: error.problems };
    throw error;
  }
  const result = apply(next);
  return { ok: true, changes: summarizeChanges(result.applied), notApplied: summarizeChanges(result.notApplied) };
}
