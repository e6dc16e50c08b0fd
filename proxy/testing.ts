import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { adminToken } from '../lib/admin-token.ts';
import { LANE_DEFAULTS, LANES, loadConfig, validateConfig, type SwitchyardConfig } from '../lib/config.ts';
import type { Logger } from '../lib/log.ts';
import { ControlServer } from './control.ts';
import { SwitchyardProxy } from './server.ts';

type Tree = Record<string, unknown>;

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepMerge(base: Tree, override: Tree): Tree {
  const merged: Tree = { ...base };
  for (const [key, value] of Object.entries(override)) {
    merged[key] = isTree(value) && isTree(merged[key]) ? deepMerge(merged[key] as Tree, value) : value;
  }
  return merged;
}

export interface StartedProxy {
  proxy: SwitchyardProxy;
  config: SwitchyardConfig;
  /** the config as written to configFile, before validation (write a changed copy there, then reload) */
  configTree: Tree;
  /** the file the proxy reloads from (JSON, which is YAML) */
  configFile: string;
  port: number;
  /** the proxy's control API (admin token: SWITCHYARD_ADMIN_TOKEN, or one made in its data directory) */
  controlPort: number;
  url: string;
  close(): Promise<void>;
}

/**
 * Starts an in-process proxy on a free loopback port in front of static targets, for tests and
 * benchmarks. Lanes whose pool is not given go to "web".
 */
export async function startProxy(options: { pools: Record<string, string[]>; config?: Tree; log?: Logger }): Promise<StartedProxy> {
  const pools = Object.fromEntries(Object.entries(options.pools).map(([name, targets]) => [name, { targets }]));
  const lanes = Object.fromEntries(
    LANES.filter((lane) => !options.pools[LANE_DEFAULTS[lane].pool]).map((lane) => [lane, { pool: 'web' }]),
  );
  // A data directory of its own: the proxy empties its body spool at start, and the checkout's
  // var/ belongs to a running stack.
  const data = mkdtempSync(path.join(tmpdir(), 'switchyard-test-proxy-'));
  const raw = deepMerge(
    { data, proxy: { host: '127.0.0.1', port: 0, control: { port: 0 }, debugHeaders: true, healthCheck: { intervalMs: 200 } }, pools, lanes },
    options.config ?? {},
  );
  const configFile = path.join(data, 'switchyard.json');
  writeFileSync(configFile, JSON.stringify(raw));
  const config = validateConfig(structuredClone(raw), '(test config)');
  const log = options.log ?? pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  const proxy = new SwitchyardProxy({ config, log, source: () => loadConfig(configFile, {}) });
  const port = await proxy.listen(0, '127.0.0.1');
  const control = new ControlServer(proxy, adminToken(config.data).token, log);
  const controlPort = await control.listen(0, '127.0.0.1');
  const close = async () => {
    await proxy.shutdown();
    await control.close();
    rmSync(data, { recursive: true, force: true });
  };
  return { proxy, config, configTree: raw, configFile, port, controlPort, url: `http://127.0.0.1:${port}`, close };
}
