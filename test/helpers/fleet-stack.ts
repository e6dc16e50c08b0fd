// The whole stack (proxy, supervisor, worker pools) under a private PM2 daemon, as `npm start`
// runs it, on free ports and a temp data dir. Tests never touch a user's PM2 (own PM2_HOME).
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfig, PROJECT_ROOT, type SwitchyardConfig } from '../../lib/config.ts';
import { pm2Apps } from '../../lib/ecosystem.ts';
import { buildRuntime } from '../../lib/build.ts';
import { deepMerge } from '../../proxy/testing.ts';
import { Pm2Client } from '../../supervisor/pm2-client.ts';
import { waitFor } from './http.ts';
import { copyOfFixture, freePort, removeDir } from './worker-harness.ts';

export const TEST_TOKEN = 'fleet-test-admin-token-0123456789';
/** an API call still unanswered after this fails (no test waits forever on a hung supervisor) */
const API_TIMEOUT_MS = 30_000;

/** Whether a listener could bind 127.0.0.1:port now. */
export async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  try {
    await once(server, 'listening');
    server.close();
    await once(server, 'close');
    return true;
  } catch {
    return false;
  }
}

/** The first of `count` consecutive free ports, searched from a random point of a quiet range. */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 21000 + Math.floor(Math.random() * 9000);
    let allFree = true;
    for (let port = base; port < base + count && allFree; port++) allFree = await isFree(port);
    if (allFree) return base;
  }
  throw new Error('no range of free ports found');
}

export interface FleetStack extends PreparedStack {
  pm2: Pm2Client;
  stop(): Promise<void>;
}

export interface FleetWorkerView {
  name: string;
  pool: string;
  state: string;
  pid?: number;
  pmId?: number;
  served?: number;
  rssBytes?: number;
  restarts: number;
  /** the reason of a recycle queued for this worker */
  pendingRecycle?: string;
}

const pm2Bin = path.join(PROJECT_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

/** A stack's config file, data dir, ports and API client, before anything runs. */
export interface PreparedStack {
  config: SwitchyardConfig;
  /** the config file (SWITCHYARD_CONFIG) */
  file: string;
  data: string;
  pm2Home: string;
  proxyUrl: string;
  controlUrl: string;
  supervisorUrl: string;
  /** JSON call to the supervisor API with the admin token */
  api<T = any>(method: 'GET' | 'POST', route: string): Promise<{ status: number; body: T }>;
  fleet(): Promise<FleetWorkerView[]>;
}

/**
 * Writes a small test config with `overrides` merged in (pools default to the conf defaults'
 * shapes but on free ports) into a temp data dir with a copy of the demo repos, and points
 * PM2_HOME there (the daemon and every app inherit it).
 */
export async function prepareStack(overrides: Record<string, unknown>, dataDir?: string): Promise<PreparedStack> {
  const { data, repos } = await copyOfFixture(dataDir);
  const pm2Home = path.join(data, 'pm2');
  process.env.PM2_HOME = pm2Home; // the daemon and every app inherit it
  process.env.SWITCHYARD_ADMIN_TOKEN = TEST_TOKEN;
  process.on('exit', () => {
    // A failed test must not leave a daemon and its workers behind. A stack that was stopped has
    // no PM2_HOME any more, and `pm2 kill` would only create it again.
    if (!existsSync(pm2Home)) return;
    try {
      execFileSync(process.execPath, [pm2Bin, 'kill'], { env: { ...process.env, PM2_HOME: pm2Home }, stdio: 'ignore', timeout: 20_000 });
    } catch {
      // already gone
    }
  });

  const pools = (overrides.pools ?? {}) as Record<string, { instances?: number }>;
  const instances = Object.values(pools).reduce((sum, pool) => sum + (pool.instances ?? 2), 0);
  let portBase = await freePortRange(instances);
  const poolsWithPorts = Object.fromEntries(
    Object.entries(pools).map(([name, pool]) => {
      const withPort = { ...pool, portBase };
      portBase += pool.instances ?? 2;
      return [name, withPort];
    }),
  );
  const [proxyPort, controlPort, supervisorPort] = [await freePort(), await freePort(), await freePort()];
  const raw = deepMerge(
    {
      data,
      proxy: { host: '127.0.0.1', port: proxyPort, control: { port: controlPort }, debugHeaders: true, healthCheck: { intervalMs: 500 } },
      supervisor: { port: supervisorPort },
      worker: { repos },
    },
    { ...overrides, pools: poolsWithPorts },
  );
  const file = path.join(data, 'switchyard.yaml');
  writeFileSync(file, stringify(raw));
  const config = loadConfig(file, {});

  const supervisorUrl = `http://127.0.0.1:${supervisorPort}`;
  const api = async (method: 'GET' | 'POST', route: string) => {
    const response = await fetch(`${supervisorUrl}${route}`, { method, headers: { authorization: `Bearer ${TEST_TOKEN}` }, signal: AbortSignal.timeout(API_TIMEOUT_MS) });
    const text = await response.text();
    return { status: response.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
  };
  const fleet = async (): Promise<FleetWorkerView[]> =>
    (await api('GET', '/api/fleet')).body.pools.flatMap((pool: { workers: FleetWorkerView[] }) => pool.workers);
  return {
    config,
    file,
    data,
    pm2Home,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    controlUrl: `http://127.0.0.1:${controlPort}`,
    supervisorUrl,
    api,
    fleet,
  };
}

/** Resolves once the supervisor answers and `isUp` holds for its workers (default: every one ready). */
export async function waitUntilUp(
  stack: PreparedStack,
  isUp: (workers: FleetWorkerView[]) => boolean = (workers) => workers.every((worker) => worker.state === 'ready'),
): Promise<void> {
  await waitFor(
    async () => {
      try {
        return isUp(await stack.fleet());
      } catch {
        return false;
      }
    },
    'every worker ready in the supervisor',
    90_000,
  );
}

export interface FleetStackOptions {
  /** runs once the config is written, before PM2 starts anything (e.g. to occupy a worker's port) */
  beforeStart?(config: SwitchyardConfig): Promise<void>;
  /** when the stack counts as started (default: every worker ready in the supervisor) */
  isUp?(workers: FleetWorkerView[]): boolean;
  /** an empty dir to hold the stack's data, repos and PM2_HOME (e.g. on a filesystem the test mounted); default a new temp dir */
  dataDir?: string;
}

/**
 * Starts the stack with `overrides` merged into a small test config (see prepareStack) under a
 * private PM2 daemon. Resolves when every worker is ready (or `options.isUp` holds).
 */
export async function startFleetStack(
  overrides: Record<string, unknown>,
  supervisorEnv: Record<string, string> = {},
  options: FleetStackOptions = {},
): Promise<FleetStack> {
  const prepared = await prepareStack(overrides, options.dataDir);
  await options.beforeStart?.(prepared.config);
  const pm2 = new Pm2Client(prepared.pm2Home);
  await pm2.connect();
  for (const app of pm2Apps(prepared.config, prepared.file, buildRuntime())) {
    if (app.name === 'supervisor') Object.assign(app.env, supervisorEnv);
    await pm2.start({ ...app, env: { ...app.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' } });
  }
  await waitUntilUp(prepared, options.isUp);

  return {
    ...prepared,
    pm2,
    async stop() {
      await pm2.killDaemon().catch(() => {});
      pm2.disconnect();
      await removeDir(prepared.data);
    },
  };
}
