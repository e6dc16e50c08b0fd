// A small site of several hosts for multi-host tests: each host is a network namespace (netns.ts)
// running the whole stack as `npm start` does (pm2-runtime on ecosystem.config.js, so the PM2
// daemon, the proxy, the supervisor and the host's workers all live inside the namespace), with
// its own data dir and PM2_HOME, env SWITCHYARD_HOST=<name>, and one config file for the site.
// A private Redis and PostgreSQL listen on the bridge address, reachable from every host; the test
// process reaches every host's proxy, control API and supervisor through the bridge.
//
// remove() (and process exit, SIGINT, SIGTERM: netns.ts) kills every process of every host,
// deletes the namespaces and links, and stops the servers.
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfig, PROJECT_ROOT, type SwitchyardConfig } from '../../lib/config.ts';
import { poolHosts, workerName } from '../../lib/site.ts';
import { deepMerge } from '../../proxy/testing.ts';
import { request, waitFor, type SimpleResponse } from './http.ts';
import { NetnsNetwork } from './netns.ts';
import { PrivatePostgres } from './private-postgres.ts';
import { PrivateRedis } from './private-redis.ts';
import { copyOfFixture } from './worker-harness.ts';

export const SITE_TOKEN = 'site-test-admin-token-0123456789';
/** Every host has its own port space (its namespace), so every host uses the same ports. */
export const SITE_PORTS = { proxy: 8080, control: 8081, supervisor: 8090 } as const;
const pm2Runtime = path.join(PROJECT_ROOT, 'node_modules', 'pm2', 'bin', 'pm2-runtime');
const pm2Cli = path.join(PROJECT_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const OUTPUT_LIMIT = 256 * 1024;
const API_TIMEOUT_MS = 15_000;
const START_TIMEOUT_MS = 120_000;
/** the compiled worker script in a process's command line */
const WORKER_SCRIPT = path.join('dist', 'worker.mjs');

/** A worker as GET /api/fleet lists it (the fields the tests read). */
export interface SiteWorkerView {
  name: string;
  pool: string;
  host?: string;
  state: string;
  pid?: number;
}

export interface JsonResponse<T> {
  status: number;
  body: T;
}

async function jsonCall<T>(url: string, method: string): Promise<JsonResponse<T>> {
  const answer: SimpleResponse = await request(url, { method, headers: { authorization: `Bearer ${SITE_TOKEN}` }, timeoutMs: API_TIMEOUT_MS });
  const text = answer.body;
  return { status: answer.status, body: (text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text) as T };
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** One host of the site: its namespace, its stack's addresses and its pm2-runtime. */
export class SiteHost {
  private runtime: ChildProcess | undefined;
  private outputText = '';

  constructor(
    private readonly network: NetnsNetwork,
    readonly name: string,
    readonly address: string,
    readonly data: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  get proxyUrl(): string {
    return `http://${this.address}:${SITE_PORTS.proxy}`;
  }

  get controlUrl(): string {
    return `http://${this.address}:${SITE_PORTS.control}`;
  }

  get supervisorUrl(): string {
    return `http://${this.address}:${SITE_PORTS.supervisor}`;
  }

  get pm2Home(): string {
    return this.env.PM2_HOME!;
  }

  /** pm2-runtime's own output (the apps' lines go to PM2's log files under PM2_HOME), the last 256 KB */
  output(): string {
    return this.outputText;
  }

  /** Starts pm2-runtime on ecosystem.config.js inside the host's namespace (returns at once). */
  start(): void {
    if (this.running) throw new Error(`host ${this.name} runs already`);
    const runtime = this.network.spawnIn(this.name, process.execPath, [pm2Runtime, 'start', 'ecosystem.config.js'], {
      cwd: PROJECT_ROOT,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (chunk: Buffer) => (this.outputText = (this.outputText + chunk.toString()).slice(-OUTPUT_LIMIT));
    runtime.stdout!.on('data', collect);
    runtime.stderr!.on('data', collect);
    this.runtime = runtime;
  }

  get running(): boolean {
    return this.runtime !== undefined && this.runtime.exitCode === null && this.runtime.signalCode === null;
  }

  /** A crashed host: SIGKILLs everything running in its namespace. */
  kill(): void {
    this.network.killAll(this.name);
  }

  /** JSON call to the host's supervisor API (admin token). */
  api<T = any>(method: 'GET' | 'POST', route: string): Promise<JsonResponse<T>> {
    return jsonCall<T>(`${this.supervisorUrl}${route}`, method);
  }

  /** JSON call to the host's proxy control API (admin token). */
  control<T = any>(method: 'GET' | 'POST', route: string): Promise<JsonResponse<T>> {
    return jsonCall<T>(`${this.controlUrl}${route}`, method);
  }

  /** Every worker the host's supervisor lists (in a multi-host site: every host's). */
  async fleet(): Promise<SiteWorkerView[]> {
    const { status, body } = await this.api<{ pools: Array<{ workers: SiteWorkerView[] }> }>('GET', '/api/fleet');
    if (status !== 200) throw new Error(`GET /api/fleet on host ${this.name}: ${status}`);
    return body.pools.flatMap((pool) => pool.workers);
  }

  /** For a failing test's message: the workers as its supervisor lists them, and the end of pm2-runtime's output. */
  async describe(): Promise<string> {
    const fleet = await this.fleet().then(
      (workers) => workers.map((worker) => `${worker.name}:${worker.state}`).join(' '),
      (error: Error) => `unanswered (${error.message})`,
    );
    const routed = await this.proxyWorkers().then(
      (workers) => workers.map((worker) => `${worker.name}:${worker.state}`).join(' '),
      (error: Error) => `unanswered (${error.message})`,
    );
    return `host ${this.name}: supervisor's fleet: ${fleet}; proxy's workers: ${routed}\npm2-runtime output:\n${this.output().slice(-4000)}`;
  }

  /** The workers as the host's proxy sees them (control API /state). */
  async proxyWorkers(): Promise<SiteWorkerView[]> {
    const { status, body } = await this.control<{ pools: Array<{ workers: SiteWorkerView[] }> }>('GET', '/state');
    if (status !== 200) throw new Error(`GET /state on host ${this.name}'s proxy: ${status}`);
    return body.pools.flatMap((pool) => pool.workers);
  }

  /** The worker processes running on this host now (pids). */
  workerPids(): number[] {
    return this.network.pids(this.name).filter((pid) => commandLine(pid).includes(WORKER_SCRIPT));
  }

  /** SIGKILLs the host's worker processes (PM2 starts them again after its restart delay); returns their pids. */
  killWorkers(): number[] {
    const pids = this.workerPids();
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    return pids;
  }

  /** Runs the pm2 CLI inside the namespace against this host's PM2 (e.g. `stop worker-web`); its stdout. */
  pm2(args: string[]): Promise<string> {
    return this.network.execIn(this.name, process.execPath, [pm2Cli, ...args], { env: this.env, timeoutMs: 30_000 });
  }
}

export interface SiteOptions {
  /** the hosts' names (default a, b) */
  hosts?: string[];
  /** write the config's `hosts:` (default true); false: one host's single-host config */
  multiHost?: boolean;
  /** merged into the site's config (pools, lanes, ...) */
  overrides?: Record<string, unknown>;
}

export class Site {
  constructor(
    readonly network: NetnsNetwork,
    readonly redis: PrivateRedis,
    readonly postgres: PrivatePostgres,
    /** the site's config file, the same for every host */
    readonly file: string,
    readonly config: SwitchyardConfig,
    readonly hosts: SiteHost[],
  ) {}

  host(name: string): SiteHost {
    const host = this.hosts.find((candidate) => candidate.name === name);
    if (!host) throw new Error(`no host ${name}`);
    return host;
  }

  /** Pulls the host's cable: nothing reaches it, and it reaches nothing (Redis, PostgreSQL, other hosts). */
  cut(name: string): void {
    this.network.cut(name);
  }

  reconnect(name: string): void {
    this.network.reconnect(name);
  }

  /** Every supervised worker of the site, by the host it runs on. */
  workersOn(hostName: string): string[] {
    if (!this.config.hosts) return Object.entries(this.config.pools).flatMap(([pool, poolConfig]) => (poolConfig.targets ? [] : Array.from({ length: poolConfig.instances }, (_, index) => workerName(pool, index))));
    return Object.entries(this.config.pools).flatMap(([pool, poolConfig]) =>
      poolConfig.targets || !poolHosts(this.config, poolConfig).some((host) => host.name === hostName)
        ? []
        : Array.from({ length: poolConfig.instances }, (_, index) => workerName(pool, index, hostName)),
    );
  }

  /**
   * Resolves once every host's supervisor has its own workers ready and every proxy routes to
   * every worker of the site (ready in its /state).
   */
  async waitUntilReady(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const everyWorker = this.hosts.flatMap((host) => this.workersOn(host.name));
    for (const host of this.hosts) {
      const own = this.workersOn(host.name);
      await waitFor(
        async () => {
          try {
            const supervised = new Map((await host.fleet()).map((worker) => [worker.name, worker.state]));
            const routed = new Map((await host.proxyWorkers()).map((worker) => [worker.name, worker.state]));
            return own.every((name) => supervised.get(name) === 'ready') && everyWorker.every((name) => routed.get(name) === 'ready');
          } catch {
            return false;
          }
        },
        `host ${host.name}: its workers ${own.join(', ')} ready in its supervisor, and ${everyWorker.join(', ')} in its proxy`,
        timeoutMs,
      ).catch(async (error: Error) => {
        throw new Error(`${error.message}\n${await host.describe()}`);
      });
    }
  }

  /** Kills every host, stops the servers, deletes the namespaces, links and data. */
  async remove(): Promise<void> {
    for (const host of this.hosts) host.kill();
    await this.redis.remove();
    await this.postgres.remove();
    this.network.remove();
  }
}

/**
 * Builds the network, starts Redis and PostgreSQL on the bridge, writes the site's config and
 * starts every host's stack; resolves once the whole site is ready. On a failure everything it
 * made is removed before the error is thrown.
 */
export async function startSite(options: SiteOptions = {}): Promise<Site> {
  const names = options.hosts ?? ['a', 'b'];
  const multiHost = options.multiHost ?? true;
  if (!multiHost && names.length !== 1) throw new Error('a single-host config runs on one host');
  const network = NetnsNetwork.create(names);
  let redis: PrivateRedis | undefined;
  let postgres: PrivatePostgres | undefined;
  try {
    redis = await PrivateRedis.create(network.bridgeAddress);
    postgres = await PrivatePostgres.create({ listen: { address: network.bridgeAddress, allow: network.cidr } });
    const raw = deepMerge(
      {
        ...(multiHost ? { hosts: Object.fromEntries(network.hosts.map((host) => [host.name, { address: host.address }])) } : {}),
        proxy: {
          host: '0.0.0.0',
          port: SITE_PORTS.proxy,
          control: { host: '0.0.0.0', port: SITE_PORTS.control },
          debugHeaders: true,
          trustedProxies: ['127.0.0.1/32', '::1/128', `${network.bridgeAddress}/32`],
          healthCheck: { intervalMs: 500 },
        },
        supervisor: { host: '0.0.0.0', port: SITE_PORTS.supervisor },
        pools: { web: { instances: 1, portBase: 9100 }, clone: { instances: 1, portBase: 9200 } },
        lanes: { bot: { pool: 'clone' } },
      },
      options.overrides ?? {},
    );
    const file = path.join(network.dir, 'switchyard.yaml');
    writeFileSync(file, stringify(raw));
    const hosts: SiteHost[] = [];
    for (const host of network.hosts) {
      const data = path.join(network.dir, host.name);
      mkdirSync(data);
      const { repos } = await copyOfFixture(data);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        SWITCHYARD_CONFIG: file,
        SWITCHYARD_DATA: data,
        SWITCHYARD_REPOS: repos,
        SWITCHYARD_HOST: host.name,
        SWITCHYARD_ADMIN_TOKEN: SITE_TOKEN,
        PM2_HOME: path.join(data, 'pm2'),
        REDIS_URL: redis.url,
        DATABASE_URL: postgres.url(),
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      };
      hosts.push(new SiteHost(network, host.name, host.address, data, env));
    }
    const config = loadConfig(file, { SWITCHYARD_HOST: names[0] });
    const site = new Site(network, redis, postgres, file, config, hosts);
    try {
      // one at a time until each proxy answers: every host compiles dist/ at start (ecosystem.config.js)
      for (const host of hosts) {
        host.start();
        const proxyUp = async () => {
          if (!host.running) throw new Error(`pm2-runtime of host ${host.name} exited`);
          return (await request(`${host.proxyUrl}/healthz`, { timeoutMs: 2000 }).catch(() => undefined))?.status === 200;
        };
        await waitFor(proxyUp, `host ${host.name}'s proxy up`, START_TIMEOUT_MS).catch(async (error: Error) => {
          throw new Error(`${error.message}\n${await host.describe()}`);
        });
      }
      await site.waitUntilReady();
    } catch (error) {
      await site.remove();
      throw error;
    }
    return site;
  } catch (error) {
    await redis?.remove();
    await postgres?.remove();
    network.remove();
    throw error;
  }
}
