import { isDeepStrictEqual } from 'node:util';
import type { SwitchyardConfig } from './config-schema.ts';

/** One setting that differs between two validated configs. */
export interface ConfigChange {
  /** dotted key path, e.g. `proxy.limits.maxBodyBytes`, or `pools.web` for a pool added or removed */
  key: string;
  /** undefined: the key was not set (an optional key, or a pool that did not exist) */
  from: unknown;
  to: unknown;
  /** a running stack can take it without a restart */
  live: boolean;
  /** for a change that is not live: what applies it */
  reason?: string;
}

const RESTART_PROXY = 'the proxy binds it at start: restart the proxy (npx switchyard restart-proxy)';
const RESTART_SUPERVISOR = 'the supervisor binds it at start: restart the supervisor';

/**
 * What a running stack cannot change, each with what applies it instead: the one table of it. A
 * pattern covers the key and everything under it; `*` stands for one key segment. With the
 * settings a supervised pool's workers were started with (STARTED_WITH below), everything not
 * listed here changes live (the proxy's reload in proxy/reload.ts, the supervisor's in its own).
 */
export const NOT_LIVE: ReadonlyArray<readonly [pattern: string, reason: string]> = [
  ['data', 'every process keeps the data directory it started with: restart the stack'],
  ['proxy.host', RESTART_PROXY],
  ['proxy.port', RESTART_PROXY],
  ['proxy.control.host', RESTART_PROXY],
  ['proxy.control.port', RESTART_PROXY],
  // emptied at start and holding open temp files: moving them under running requests gains nothing
  ['proxy.bodies.spoolDir', RESTART_PROXY],
  ['proxy.streaming.spoolDir', RESTART_PROXY],
  ['proxy.cloneSharing.dir', RESTART_PROXY],
  // opened at start; SIGUSR1 reopens the same path (log rotation)
  ['proxy.accessLog', RESTART_PROXY],
  ['supervisor.host', RESTART_SUPERVISOR],
  ['supervisor.port', RESTART_SUPERVISOR],
  ['worker', 'a worker reads it when it starts: roll the pools (npx switchyard roll <pool>)'],
  // which host runs which workers, and where they listen: every host's stack started with it
  ['hosts', 'every host started its processes with the site\'s hosts: restart the stack on each host'],
  ['pools.*.hosts', 'every host started its processes with the site\'s hosts: restart the stack on each host'],
];

const RESTART_POOL = "PM2 started the pool's workers with it: restart the stack (a pool under another name is live)";

/**
 * Settings of a supervised pool that its running workers were started with (their address, and
 * their concurrency in PM2's env): not live while the pool stays supervised, for the proxy must not
 * send a worker more than it was started to take, nor look for it elsewhere. Live for a pool that
 * becomes supervised or static targets in the same reload.
 */
const STARTED_WITH: ReadonlySet<string> = new Set(['portBase', 'host', 'concurrency']);

function startedWithReason(key: string, before: SwitchyardConfig, after: SwitchyardConfig): string | undefined {
  const [top, pool, setting, ...below] = key.split('.');
  if (top !== 'pools' || below.length > 0 || !STARTED_WITH.has(setting)) return undefined;
  const supervised = (config: SwitchyardConfig) => config.pools[pool] !== undefined && config.pools[pool].targets === undefined;
  return supervised(before) && supervised(after) ? RESTART_POOL : undefined;
}

/** Settings never printed: a summary says only that they changed. */
export const SECRET_KEYS: readonly string[] = ['bots.tokens'];

/** Why `key` cannot change live, or undefined when it can. */
export function notLiveReason(key: string): string | undefined {
  const segments = key.split('.');
  for (const [pattern, reason] of NOT_LIVE) {
    const parts = pattern.split('.');
    if (parts.length <= segments.length && parts.every((part, index) => part === '*' || part === segments[index])) return reason;
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Every setting that differs, leaf by leaf: objects are walked (a pool, or any object, that
 * exists on one side only is one change at its key), arrays and scalars are compared whole.
 */
export function diffConfig(before: SwitchyardConfig, after: SwitchyardConfig): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const walk = (from: unknown, to: unknown, path: string[]) => {
    if (isPlainObject(from) && isPlainObject(to)) {
      const keys = new Set([...Object.keys(from), ...Object.keys(to)]);
      for (const key of keys) walk(from[key], to[key], [...path, key]);
      return;
    }
    if (isDeepStrictEqual(from, to)) return;
    const key = path.join('.');
    const reason = notLiveReason(key) ?? startedWithReason(key, before, after);
    changes.push(reason === undefined ? { key, from, to, live: true } : { key, from, to, live: false, reason });
  };
  walk(before, after, []);
  return changes;
}

/**
 * A copy of `config` with each of `changes` undone (its `from` value back, or the key unset): what
 * a reload runs with, so that a change that cannot be made live is not half-applied.
 */
export function undoChanges(config: SwitchyardConfig, changes: readonly ConfigChange[]): SwitchyardConfig {
  const undone = structuredClone(config);
  for (const { key, from } of changes) {
    // keys are config keys and pool or lane names: none has a dot
    const path = key.split('.');
    let node = undone as unknown as Record<string, unknown>;
    for (const segment of path.slice(0, -1)) node = node[segment] as Record<string, unknown>;
    const last = path[path.length - 1];
    if (from === undefined) delete node[last];
    else node[last] = structuredClone(from);
  }
  return undone;
}

const MAX_LISTED = 5;
const MAX_VALUE_CHARS = 60;

function show(value: unknown): string {
  if (value === undefined) return 'unset';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 3)}...` : text;
}

function isSecret(key: string): boolean {
  return SECRET_KEYS.some((secret) => key === secret || key.startsWith(`${secret}.`));
}

/** A list of scalars as what was added and removed; a list of objects by its length. */
function describeList(from: unknown[], to: unknown[]): string {
  const scalars = [...from, ...to].every((item) => !isPlainObject(item) && !Array.isArray(item));
  if (!scalars) return `changed (${from.length} -> ${to.length} entries)`;
  const added = to.filter((item) => !from.some((old) => isDeepStrictEqual(old, item))).map((item) => `+${show(item)}`);
  const removed = from.filter((item) => !to.some((next) => isDeepStrictEqual(next, item))).map((item) => `-${show(item)}`);
  const edits = [...added, ...removed];
  if (edits.length === 0) return 'reordered';
  const listed = edits.slice(0, MAX_LISTED).join(', ');
  return edits.length > MAX_LISTED ? `${listed} and ${edits.length - MAX_LISTED} more` : listed;
}

function describe(change: ConfigChange): string {
  const { key, from, to } = change;
  if (isSecret(key)) return `${key} changed`;
  if (key === 'classify') {
    const count = (rules: unknown) => (Array.isArray(rules) ? rules.length : 0);
    return `classify rules changed (${count(from)} -> ${count(to)} rules)`;
  }
  if (from === undefined && isPlainObject(to)) return `${key} added`;
  if (to === undefined && isPlainObject(from)) return `${key} removed`;
  if (Array.isArray(from) && Array.isArray(to)) return `${key}: ${describeList(from, to)}`;
  return `${key} ${show(from)} -> ${show(to)}`;
}

/**
 * One short line per change, for people: `pools.web.instances 2 -> 3`, lists as what was added
 * and removed, `classify rules changed`, secrets only as `changed`; a change that is not live
 * says what would apply it.
 */
export function summarizeChanges(changes: readonly ConfigChange[]): string[] {
  return changes.map((change) => (change.live ? describe(change) : `${describe(change)} (not applied: ${change.reason ?? 'needs a restart'})`));
}
