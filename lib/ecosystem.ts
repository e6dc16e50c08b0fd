import path from 'node:path';
import { PROJECT_ROOT, type SwitchyardConfig } from './config.ts';
import { runtimeScripts, type RuntimeScripts } from './build.ts';
import { exitDeadlineMs, PM2_KILL_AFTER_MS } from './stop-deadlines.ts';
import { PROXY_SCRIPT_ENV } from './proxy-script-env.ts';
import { poolRunsOn, siteOf, type Site } from './site.ts';

/** A PM2 app description (the subset we use). */
export interface Pm2App {
  name: string;
  script: string;
  interpreter: string;
  interpreter_args: string[];
  cwd: string;
  exec_mode: 'fork';
  instances?: number;
  increment_var?: string;
  instance_var?: string;
  wait_ready?: boolean;
  listen_timeout?: number;
  kill_timeout?: number;
  exp_backoff_restart_delay?: number;
  autorestart?: boolean;
  pmx?: boolean;
  env: Record<string, string>;
}

/**
 * Node options of the proxy's process, also used by the benchmarks that run it (bench/).
 *
 * `--no-memory-reducer`: when V8 sees an isolate go idle after some allocation, it runs extra
 * memory-reducing collections. A proxy that sits idle for a few seconds with only its health probes
 * running (after boot, or through the night) and only then takes its load comes out of that with
 * hot code that serves 11-15% fewer requests per CPU-second, for as long as we watched (the ten
 * minutes of a benchmark run). The profile then shows object literals built through the runtime on
 * every request (Node's `process.nextTick`, the http agent's `addRequest`). Measured, side by side on one core against a
 * bare http-proxy-3 forwarder: 0.85-0.89x after 16 s idle, 1.04x with the reducer off (1.01x
 * without the idle spell). The cost: an idle heap keeps its high-water mark, a few tens of MB. It
 * has to be a command-line option: `v8.setFlagsFromString` at startup comes too late for it.
 */
export const PROXY_NODE_ARGS: readonly string[] = ['--no-memory-reducer'];

const nodeApp = (name: string, script: string, env: Record<string, string>, nodeArgs: readonly string[] = []): Pm2App => ({
  name,
  script,
  interpreter: process.execPath,
  interpreter_args: ['--enable-source-maps', ...nodeArgs],
  cwd: PROJECT_ROOT,
  exec_mode: 'fork',
  wait_ready: true,
  listen_timeout: 60_000,
  exp_backoff_restart_delay: 200,
  // PM2 otherwise loads its metrics agent (pm2-io-bpm) into every app: an IPC message every second
  // from each process, the proxy's included, and a process.exit(1) one second after PM2 dies that
  // cuts our own bounded stop short. `pm2 monit` keeps CPU and memory (read by PM2 itself).
  pmx: false,
  env,
});

/**
 * The PM2 apps for a validated config: the proxy, the supervisor and one fork-mode app per
 * supervised pool, running the compiled scripts (lib/build.ts `buildRuntime` makes them).
 * Each process ends itself within its exit deadline (lib/stop-deadlines.ts); PM2's kill_timeout
 * comes after it, so PM2's SIGKILL is only a second line.
 */
export function pm2Apps(config: SwitchyardConfig, configFile: string, scripts: RuntimeScripts = runtimeScripts(), site = siteOf(config)): Pm2App[] {
  const shared = { SWITCHYARD_CONFIG: configFile, SWITCHYARD_DATA: config.data, ...hostEnv(site) };
  const apps: Pm2App[] = [
    // the master holds the listeners and runs scripts.proxy, twice while one replaces the other (restart-proxy)
    {
      ...nodeApp('proxy', scripts['proxy-master'], { ...shared, [PROXY_SCRIPT_ENV]: scripts.proxy }, PROXY_NODE_ARGS),
      kill_timeout: exitDeadlineMs('proxy-master', config) + PM2_KILL_AFTER_MS,
    },
    { ...nodeApp('supervisor', scripts.supervisor, shared), kill_timeout: exitDeadlineMs('supervisor', config) + PM2_KILL_AFTER_MS },
  ];
  for (const pool of Object.keys(config.pools)) {
    // static targets run outside PM2; on a site of several hosts, each runs its share of the pools
    if (poolRunsOn(config, config.pools[pool], site)) apps.push(workerApp(config, pool, configFile, scripts, site));
  }
  return apps;
}

/** On a site of several hosts, every process is told which host it is on (and workers listen on its address). */
function hostEnv(site: Site): Record<string, string> {
  return site.multiHost ? { SWITCHYARD_HOST: site.self.name } : {};
}

/** The PM2 app of one supervised pool (also what the supervisor starts when a reload adds a pool). */
export function workerApp(config: SwitchyardConfig, pool: string, configFile: string, scripts: RuntimeScripts = runtimeScripts(), site = siteOf(config)): Pm2App {
  const poolConfig = config.pools[pool];
  return {
    ...nodeApp(`worker-${pool}`, scripts.worker, {
      SWITCHYARD_CONFIG: configFile,
      SWITCHYARD_DATA: config.data,
      ...hostEnv(site),
      ...(site.multiHost ? { SWITCHYARD_WORKER_HOST: site.self.address } : {}),
      SWITCHYARD_POOL: pool,
      PORT: String(poolConfig.portBase),
      SWITCHYARD_WORKER_CONCURRENCY: String(poolConfig.concurrency),
    }),
    instances: poolConfig.instances,
    increment_var: 'PORT',
    instance_var: 'SWITCHYARD_WORKER_INDEX',
    // PM2 must wait longer than a drain, or it would kill a worker that is finishing a clone.
    kill_timeout: Math.max((poolConfig.drainTimeoutSec + 10) * 1000, exitDeadlineMs('worker', config) + PM2_KILL_AFTER_MS),
  };
}
