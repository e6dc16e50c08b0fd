import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, isMap, isSeq, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type SwitchyardConfig } from './config-schema.ts';

export * from './config-schema.ts';

/** The checkout's root: the nearest folder above this module (source or bundle) with our package.json. */
function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    try {
      if (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'switchyard') return dir;
    } catch {
      // no package.json here, or not ours: keep walking up
    }
    if (path.dirname(dir) === dir) return path.resolve(start, '..');
  }
}

export const PROJECT_ROOT = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));
export const DEFAULT_CONFIG_FILE = path.join(PROJECT_ROOT, 'conf', 'switchyard.yaml');

/** A config problem, told as file:line, key, the bad value and what was expected. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${file}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function configFileFromEnv(env: Env = process.env): string {
  return path.resolve(env.SWITCHYARD_CONFIG ?? DEFAULT_CONFIG_FILE);
}

/** Loads, validates and applies env overrides; throws ConfigError with every problem found. */
export function loadConfig(file = configFileFromEnv(), env: Env = process.env): SwitchyardConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`cannot read the file: ${(error as Error).message}`]);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: Env = {}): SwitchyardConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((error) => {
        const line = lineCounter.linePos(error.pos[0]).line;
        return `${file}:${line}: YAML syntax error: ${error.message.split('\n')[0]}`;
      }),
    );
  }
  const raw = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [`${file}:1: expected a mapping of settings at the top level`]);
  }
  return validateConfig(raw as Record<string, unknown>, file, env, (keys) => lineOf(doc, lineCounter, keys));
}

/** Validates a config given as an object (tests, tools); `locate` maps a key path to a line. */
export function validateConfig(
  raw: Record<string, unknown>,
  file: string,
  env: Env = {},
  locate: (keys: PropertyKey[]) => number | string = () => '?',
): SwitchyardConfig {
  const envOrigins = applyEnvOverrides(raw, env);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(file, result.error.issues.map((issue) => describeIssue(issue, raw, file, locate, envOrigins)));
  }
  const config = result.data;
  const crossProblems = crossCheck(config, raw, env);
  if (crossProblems.length > 0) {
    throw new ConfigError(file, crossProblems.map(({ key, message }) => `${file}:${locate(key)}: ${key.join('.')}: ${message}`));
  }
  config.data = path.resolve(PROJECT_ROOT, config.data);
  config.proxy.static.root = path.resolve(PROJECT_ROOT, config.proxy.static.root);
  // a path given is taken from the checkout; one left out goes under the data directory
  const dataPath = (given: string | undefined, ...underData: string[]) => (given ? path.resolve(PROJECT_ROOT, given) : path.join(config.data, ...underData));
  config.proxy.bodies.spoolDir = dataPath(config.proxy.bodies.spoolDir, 'spool', 'bodies');
  config.proxy.streaming.spoolDir = dataPath(config.proxy.streaming.spoolDir, 'spool', 'responses');
  config.proxy.cloneSharing.dir = dataPath(config.proxy.cloneSharing.dir, 'spool', 'clones');
  config.proxy.accessLog.path = dataPath(config.proxy.accessLog.path, 'log', 'access.log');
  if (config.worker.repos) config.worker.repos = path.resolve(PROJECT_ROOT, config.worker.repos);
  return config;
}

/** Sets a nested key, creating missing parents; a parent of the wrong type is left for the schema to report. */
function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (node[key] === undefined || node[key] === null) node[key] = {};
    if (typeof node[key] !== 'object' || Array.isArray(node[key])) return;
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

const asNumber = (value: string): unknown => (/^\d+$/.test(value) ? Number(value) : value);

const ENV_OVERRIDES: Array<[string, string[], (value: string) => unknown]> = [
  ['SWITCHYARD_DATA', ['data'], String],
  ['SWITCHYARD_REPOS', ['worker', 'repos'], String],
  ['SWITCHYARD_PROXY_PORT', ['proxy', 'port'], asNumber],
  ['SWITCHYARD_PROXY_CONTROL_PORT', ['proxy', 'control', 'port'], asNumber],
  ['SWITCHYARD_DASHBOARD_PORT', ['supervisor', 'port'], asNumber],
];

/** Applies env overrides; returns which key paths came from which variable, for error messages. */
function applyEnvOverrides(raw: Record<string, unknown>, env: Env): Map<string, string> {
  const origins = new Map<string, string>();
  for (const [name, keys, convert] of ENV_OVERRIDES) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, keys, convert(value));
    origins.set(keys.join('.'), name);
  }
  return origins;
}

function crossCheck(config: SwitchyardConfig, raw: Record<string, unknown>, env: Env): Array<{ key: string[]; message: string }> {
  const problems: Array<{ key: string[]; message: string }> = [];
  problems.push(...siteProblems(config, env));
  for (const [lane, laneConfig] of Object.entries(config.lanes)) {
    if (!config.pools[laneConfig.pool]) {
      problems.push({
        key: ['lanes', lane, 'pool'],
        message: `pool "${laneConfig.pool}" is not defined; expected one of: ${Object.keys(config.pools).join(', ')}`,
      });
    }
  }
  for (const [name, pool] of Object.entries(config.pools)) {
    if (!pool.targets && pool.instances < 1) {
      problems.push({ key: ['pools', name, 'instances'], message: 'expected at least 1 instance, or a list of targets' });
    }
  }
  // Whoever closes an idle connection first must be the proxy: a worker closing one as the proxy
  // reuses it resets that request. The proxy's sweep runs every eighth of its timeout, so it closes
  // up to that much late, plus timer lag. (Static targets' own keep-alive is theirs to match.)
  const supervised = Object.values(config.pools).some((pool) => !pool.targets);
  const idle = config.proxy.upstream.idleSocketTimeoutMs;
  const keepAlive = config.worker.keepAliveTimeoutMs;
  const margin = Math.max(1000, Math.ceil(idle / 4));
  if (supervised && idle + margin > keepAlive) {
    // Blame the key the file set: the other may be a default it never mentions.
    const setIdle = valueAt(raw, ['proxy', 'upstream', 'idleSocketTimeoutMs']) !== undefined;
    problems.push(
      setIdle
        ? { key: ['proxy', 'upstream', 'idleSocketTimeoutMs'], message: `${idle}: expected at most ${keepAlive - margin}, ${margin} ms below worker.keepAliveTimeoutMs (${keepAlive}), so that the proxy closes an idle worker connection before the worker does` }
        : { key: ['worker', 'keepAliveTimeoutMs'], message: `${keepAlive}: expected at least ${idle + margin}, ${margin} ms above proxy.upstream.idleSocketTimeoutMs (${idle}), so that the proxy closes an idle worker connection before the worker does` },
    );
  }
  return problems;
}

/** `hosts` and the pools' `hosts` agree; SWITCHYARD_HOST, when set, names one of them. */
function siteProblems(config: SwitchyardConfig, env: Env): Array<{ key: string[]; message: string }> {
  const problems: Array<{ key: string[]; message: string }> = [];
  const names = Object.keys(config.hosts ?? {});
  const choices = names.join(', ');
  for (const [name, pool] of Object.entries(config.pools)) {
    if (!pool.hosts) continue;
    if (!config.hosts) problems.push({ key: ['pools', name, 'hosts'], message: 'only with a top-level hosts list (the hosts of the site)' });
    else if (pool.targets) problems.push({ key: ['pools', name, 'hosts'], message: 'not with targets (static targets are not started on hosts)' });
    else {
      pool.hosts.forEach((host, i) => {
        if (!names.includes(host)) problems.push({ key: ['pools', name, 'hosts', String(i)], message: `"${host}" is not a host of the site; expected one of: ${choices}` });
      });
      if (new Set(pool.hosts).size !== pool.hosts.length) problems.push({ key: ['pools', name, 'hosts'], message: 'expected each host once' });
    }
  }
  if (config.hosts) {
    const seen = new Map<string, string>();
    for (const [name, host] of Object.entries(config.hosts)) {
      // one address in two spellings (fd00::1 and FD00:0::1, Box1 and box1) is still one
      const address = isIPv6(host.address) ? new URL(`http://[${host.address}]`).hostname : host.address.toLowerCase();
      const other = seen.get(address);
      if (other) problems.push({ key: ['hosts', name, 'address'], message: `${host.address} is host ${other}'s address too; expected one address per host` });
      if (address === '0.0.0.0' || address === '[::]') problems.push({ key: ['hosts', name, 'address'], message: `${host.address} is a wildcard: expected the address the other hosts reach this one at, e.g. 10.0.0.1` });
      seen.set(address, name);
    }
    if (names.length === 0) problems.push({ key: ['hosts'], message: 'expected at least one host (leave hosts out for a single host)' });
  }
  const self = env.SWITCHYARD_HOST;
  if (self && config.hosts && !names.includes(self)) problems.push({ key: ['hosts'], message: `SWITCHYARD_HOST=${self} is not one of the hosts: expected one of ${choices}` });
  return problems;
}

function lineOf(doc: Document, lineCounter: LineCounter, keys: PropertyKey[]): number | string {
  // Walk down to the deepest node that exists, so a missing key points at its parent.
  let node: unknown = doc.contents;
  let range = (node as { range?: [number, number, number] })?.range;
  for (const key of keys) {
    if (isMap(node)) {
      const pair = node.items.find((item) => String((item.key as { value?: unknown })?.value ?? item.key) === String(key));
      if (!pair) break;
      range = (pair.key as { range?: [number, number, number] })?.range ?? range;
      node = pair.value;
    } else if (isSeq(node)) {
      node = node.items[Number(key)];
      range = (node as { range?: [number, number, number] })?.range ?? range;
    } else {
      break;
    }
  }
  return range ? lineCounter.linePos(range[0]).line : '?';
}

function valueAt(raw: unknown, keys: PropertyKey[]): unknown {
  let node = raw;
  for (const key of keys) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function describeIssue(
  issue: z.core.$ZodIssue,
  raw: unknown,
  file: string,
  locate: (keys: PropertyKey[]) => number | string,
  envOrigins: Map<string, string>,
): string {
  const keys = issue.path;
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((key) => {
        const full = [...keys, key];
        return `${file}:${locate(full)}: unknown key ${full.join('.')}; check the spelling (conf/switchyard.yaml lists every key)`;
      })
      .join('\n  ');
  }
  const value = valueAt(raw, keys);
  const shown = value === undefined ? 'missing' : JSON.stringify(value);
  // zod nests the reason for a bad record key (such as a pool name) one level down.
  const reason = issue.code === 'invalid_key' ? issue.issues.map((inner) => inner.message).join('; ') : issue.message;
  const fromEnv = envOrigins.get(keys.join('.'));
  if (fromEnv) return `environment: ${fromEnv}=${String(value)} (for ${keys.join('.')}): ${reason}`;
  return `${file}:${locate(keys)}: ${keys.join('.') || '(top level)'} = ${shown}: ${reason}`;
}
