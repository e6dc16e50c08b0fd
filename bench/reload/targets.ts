import { DEFAULT_RULES } from '../../lib/config-schema.ts';
import { deepMerge } from '../../proxy/testing.ts';
import { STATIC_ROOT } from '../fleet/targets.ts';
import type { Fleet } from '../fleet/workers.ts';
import { commandVersion } from '../lib/machine.ts';
import { ensureBinary } from '../lib/system-packages.ts';
import { STAMPEDE_SWITCHYARD } from '../stampede/switchyard.ts';
import { haproxyFleetConfig } from '../targets/haproxy-fleet.ts';
import { nginxFleetConfig } from '../targets/nginx-fleet.ts';
import { startHaproxyMaster } from './haproxy-master.ts';
import { startNginxDaemon } from './nginx-daemon.ts';
import { startSwitchyardMaster } from './switchyard-master.ts';
import { alter, type ReloadTargetSpec } from './target.ts';

// The three front ends of the reload bench, each configured as in the midnight stampede (same
// fleet, same lanes or balancing), run the way their operators run them to reload in place. Each
// reload alternates a real change of its config and back.

/** Switchyard's change: one more classification rule (a CI user agent) and the clone queue's timeout. */
function switchyardConfig(fleet: Fleet, variant: number): Record<string, unknown> {
  const pools = Object.fromEntries(Object.entries(STAMPEDE_SWITCHYARD.pools).map(([pool, from]) => [pool, { targets: fleet.addresses(...from) }]));
  const base = deepMerge({ pools, proxy: { debugHeaders: false, static: { root: STATIC_ROOT } } }, STAMPEDE_SWITCHYARD.config);
  if (variant === 0) return base;
  return deepMerge(base, {
    classify: [{ class: 'bot', any: [{ userAgent: '^ReloadBench/' }] }, ...DEFAULT_RULES],
    pools: { clone: { queue: { timeoutMs: 590_000 } } },
  });
}

export async function reloadTargets(graceMs: number, onInstall: (pkg: string) => void): Promise<ReloadTargetSpec[]> {
  const nginx = await ensureBinary('nginx', ['nginx-light', 'nginx'], onInstall);
  const haproxy = await ensureBinary('haproxy', ['haproxy'], onInstall);
  const all = (fleet: Fleet) => fleet.workers.map((worker) => worker.address);
  return [
    {
      id: 'switchyard',
      label: 'Switchyard',
      mechanism: 'SIGHUP to the master; POST /restart',
      start: (fleet) => startSwitchyardMaster({ graceMs, config: (variant) => switchyardConfig(fleet, variant) }),
    },
    {
      id: 'nginx',
      label: 'nginx round-robin',
      mechanism: '`nginx -s reload`; binary upgrade (USR2, WINCH, QUIT)',
      ...('binary' in nginx ? { version: await commandVersion(nginx.binary, ['-v'], /nginx\/(\S+)/) } : { skipped: nginx.skipped }),
      start: (fleet) =>
        startNginxDaemon({
          binary: 'binary' in nginx ? nginx.binary : 'nginx',
          graceMs,
          // the change: the upstream read timeout (nginx's default 60 s, then 61 s)
          config: (dir, port, variant) => {
            const conf = nginxFleetConfig(dir, port, all(fleet), 'round-robin', STATIC_ROOT);
            return variant === 0 ? conf : alter(conf, 'proxy_buffering off;', 'proxy_buffering off;\n      proxy_read_timeout 61s;');
          },
        }),
    },
    {
      id: 'haproxy',
      label: 'HAProxy roundrobin',
      mechanism: 'master reload (USR2 to `haproxy -W`) for both',
      ...('binary' in haproxy ? { version: await commandVersion(haproxy.binary, ['-v'], /version (\S+)/) } : { skipped: haproxy.skipped }),
      start: (fleet) =>
        startHaproxyMaster({
          binary: 'binary' in haproxy ? haproxy.binary : 'haproxy',
          // the change: the server timeout (60 s, then 61 s)
          config: (port, variant) => {
            const conf = haproxyFleetConfig(port, all(fleet), 'roundrobin', STATIC_ROOT);
            return variant === 0 ? conf : alter(conf, 'timeout server 60s', 'timeout server 61s');
          },
        }),
    },
  ];
}
