import path from 'node:path';
import { PROJECT_ROOT, type SwitchyardConfig } from './config.ts';
import { runtimeScripts, type RuntimeScripts } from './build.ts';

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
  env: Record<string, string>;
}

const nodeApp = (name: string, script: string, env: Record<string, string>): Pm2App => ({
  name,
  script,
  interpreter: process.execPath,
  interpreter_args: ['--enable-source-maps'],
  cwd: PROJECT_ROOT,
  exec_mode: 'fork',
  wait_ready: true,
  listen_timeout: 60_000,
  exp_backoff_restart_delay: 200,
  env,
});

/**
 * The PM2 apps for a validated config: the proxy, the supervisor and one fork-mode app per
 * supervised pool, running the compiled scripts (lib/build.ts `buildRuntime` makes them).
 */
export function pm2Apps(config: SwitchyardConfig, configFile: string, scripts: RuntimeScripts = runtimeScripts()): Pm2App[] {
  const shared = { SWITCHYARD_CONFIG: configFile, SWITCHYARD_DATA: config.data };
  const apps: Pm2App[] = [
    { ...nodeApp('proxy', scripts.proxy, shared), kill_timeout: config.proxy.shutdown.graceMs + config.proxy.shutdown.healthFailLeadMs + 5000 },
    { ...nodeApp('supervisor', scripts.supervisor, shared), kill_timeout: 10_000 },
  ];
  for (const [pool, poolConfig] of Object.entries(config.pools)) {
    if (poolConfig.targets) continue; // static targets run outside PM2
    apps.push({
      ...nodeApp(`worker-${pool}`, scripts.worker, {
        ...shared,
        SWITCHYARD_POOL: pool,
        PORT: String(poolConfig.portBase),
        SWITCHYARD_WORKER_CONCURRENCY: String(poolConfig.concurrency),
      }),
      instances: poolConfig.instances,
      increment_var: 'PORT',
      instance_var: 'SWITCHYARD_WORKER_INDEX',
      // PM2 must wait longer than a drain, or it would kill a worker that is finishing a clone.
      kill_timeout: (poolConfig.drainTimeoutSec + 10) * 1000,
    });
  }
  return apps;
}
