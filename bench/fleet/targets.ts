import { fileURLToPath } from 'node:url';
import { PROXY_NODE_ARGS } from '../../lib/ecosystem.ts';
import { commandVersion } from '../lib/machine.ts';
import { ensureBinary, type Installed } from '../lib/system-packages.ts';
import { startExternalTarget, startNodeTarget, type Target } from '../lib/target.ts';
import { haproxyFleetArgs, type HaproxyBalance, type HaproxyRateLimit } from '../targets/haproxy-fleet.ts';
import { nginxFleetArgs, type NginxBalance, type NginxRateLimit } from '../targets/nginx-fleet.ts';
import type { Fleet } from './workers.ts';

// The front ends a fleet scenario compares, all in front of the same workers: Switchyard (lanes,
// per-worker slots, queues) and the setups people use today (nginx / HAProxy balancing over every
// worker, round-robin or by client IP, static files from disk).

export const STATIC_ROOT = fileURLToPath(new URL('../../worker/public', import.meta.url));
const script = (name: string) => fileURLToPath(new URL(`../targets/${name}.ts`, import.meta.url));

export interface FleetTargetSpec {
  id: string;
  label: string;
  /** set when the target cannot run here (e.g. nginx could not be installed) */
  skipped?: string;
  version?: string;
  start(fleet: Fleet): Promise<Target>;
}

export interface SwitchyardSetup {
  /** pool name -> the fleet pools whose workers it gets */
  pools: Record<string, string[]>;
  /** proxy config tree merged over proxy/testing.ts's defaults */
  config: Record<string, unknown>;
}

export function switchyardTarget(label: string, setup: SwitchyardSetup, id = 'switchyard'): FleetTargetSpec {
  return {
    id,
    label,
    start: (fleet) => {
      const pools = Object.fromEntries(Object.entries(setup.pools).map(([pool, from]) => [pool, fleet.addresses(...from)]));
      const config = { ...setup.config, proxy: { debugHeaders: false, static: { root: STATIC_ROOT }, ...(setup.config.proxy as object) } };
      return startNodeTarget(label, script('switchyard-fleet'), [JSON.stringify({ pools, config })], { LOG_LEVEL: 'warn' }, [], PROXY_NODE_ARGS);
    },
  };
}

function external(installed: Installed, version: string | undefined): Pick<FleetTargetSpec, 'skipped' | 'version'> {
  return 'skipped' in installed ? { skipped: installed.skipped } : { version };
}

/** Per-client-address limits for the rate-limited nginx and HAProxy targets (ids nginx-limit, haproxy-limit). */
export interface FleetRateLimits {
  nginx: NginxRateLimit;
  haproxy: HaproxyRateLimit;
}

/**
 * nginx (round-robin, ip_hash) and HAProxy (roundrobin, source) over every worker of the fleet;
 * with `limits`, also each round-robin one with its per-client limits.
 */
export async function baselineTargets(onInstall: (pkg: string) => void, limits?: FleetRateLimits): Promise<FleetTargetSpec[]> {
  const nginx = await ensureBinary('nginx', ['nginx-light', 'nginx'], onInstall);
  const haproxy = await ensureBinary('haproxy', ['haproxy'], onInstall);
  const nginxVersion = 'binary' in nginx ? await commandVersion(nginx.binary, ['-v'], /nginx\/(\S+)/) : undefined;
  const haproxyVersion = 'binary' in haproxy ? await commandVersion(haproxy.binary, ['-v'], /version (\S+)/) : undefined;
  const all = (fleet: Fleet) => fleet.workers.map((worker) => worker.address);
  const viaNginx = (balance: NginxBalance, label: string, id: string, limit?: NginxRateLimit): FleetTargetSpec => ({
    id,
    label,
    ...external(nginx, nginxVersion),
    start: (fleet) => startExternalTarget(id, 'binary' in nginx ? nginx.binary : 'nginx', nginxFleetArgs(all(fleet), balance, STATIC_ROOT, limit)),
  });
  const viaHaproxy = (balance: HaproxyBalance, label: string, id: string, limit?: HaproxyRateLimit): FleetTargetSpec => ({
    id,
    label,
    ...external(haproxy, haproxyVersion),
    start: (fleet) => startExternalTarget(id, 'binary' in haproxy ? haproxy.binary : 'haproxy', haproxyFleetArgs(all(fleet), balance, STATIC_ROOT, limit)),
  });
  return [
    viaNginx('round-robin', 'nginx round-robin', 'nginx-rr'),
    viaNginx('ip_hash', 'nginx ip_hash', 'nginx-iphash'),
    viaHaproxy('roundrobin', 'HAProxy roundrobin', 'haproxy-rr'),
    viaHaproxy('source', 'HAProxy balance source', 'haproxy-source'),
    ...(limits
      ? [
          viaNginx('round-robin', 'nginx round-robin + limit_req/limit_conn', 'nginx-limit', limits.nginx),
          viaHaproxy('roundrobin', 'HAProxy roundrobin + stick-table limit', 'haproxy-limit', limits.haproxy),
        ]
      : []),
  ];
}
