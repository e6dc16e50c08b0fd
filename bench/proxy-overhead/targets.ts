import { fileURLToPath } from 'node:url';
import { PROXY_NODE_ARGS } from '../../lib/ecosystem.ts';
import { commandVersion } from '../lib/machine.ts';
import { ensureBinary } from '../lib/system-packages.ts';
import { startExternalTarget, startNodeTarget, type Target } from '../lib/target.ts';
import { haproxyArgs } from '../targets/haproxy.ts';
import { nginxArgs } from '../targets/nginx.ts';

const script = (name: string) => fileURLToPath(new URL(`../targets/${name}.ts`, import.meta.url));

export type TargetId = 'direct' | 'bare' | 'switchyard' | 'switchyard-c1' | 'nginx' | 'haproxy';

export interface TargetSpec {
  id: TargetId;
  label: string;
  /** set when the target cannot run here (e.g. nginx could not be installed) */
  skipped?: string;
  version?: string;
  /** the target is a process started once for the whole run (the upstream itself): measured as one instance */
  shared?: boolean;
  start(upstream: string): Promise<Target>;
}

export async function startUpstream(): Promise<Target> {
  return startNodeTarget('upstream', script('upstream'));
}

/**
 * The targets in measurement order: the bare forwarder first, since its maximum sets the rate.
 * Each target's command line starts with `prefix` (its own CPU, bench/lib/cpu-pinning.ts).
 */
export async function targetSpecs(upstream: Target, onInstall: (pkg: string) => void, prefix: string[] = []): Promise<TargetSpec[]> {
  const [nginx, haproxy] = [await ensureBinary('nginx', ['nginx-light', 'nginx'], onInstall), await ensureBinary('haproxy', ['haproxy'], onInstall)];
  const specs: TargetSpec[] = [
    { id: 'bare', label: 'bare http-proxy-3', start: (upstream) => startNodeTarget('bare http-proxy-3', script('bare-http-proxy'), [upstream], {}, prefix) },
    { id: 'direct', label: 'direct (no proxy)', shared: true, start: async () => ({ ...upstream, name: 'direct', stop: async () => {} }) },
    {
      id: 'switchyard',
      label: 'Switchyard (concurrency 64)',
      start: (upstream) => startNodeTarget('Switchyard c64', script('switchyard-proxy'), ['--concurrency', '64', upstream], { LOG_LEVEL: 'warn' }, prefix, PROXY_NODE_ARGS),
    },
    {
      id: 'switchyard-c1',
      label: 'Switchyard (concurrency 1, queued)',
      start: (upstream) => startNodeTarget('Switchyard c1', script('switchyard-proxy'), ['--concurrency', '1', upstream], { LOG_LEVEL: 'warn' }, prefix, PROXY_NODE_ARGS),
    },
    {
      id: 'nginx',
      label: 'nginx',
      ...('skipped' in nginx ? { skipped: nginx.skipped } : { version: await commandVersion(nginx.binary, ['-v'], /nginx\/(\S+)/) }),
      start: (upstream) => startExternalTarget('nginx', 'binary' in nginx ? nginx.binary : 'nginx', nginxArgs(upstream), prefix),
    },
    {
      id: 'haproxy',
      label: 'HAProxy',
      ...('skipped' in haproxy ? { skipped: haproxy.skipped } : { version: await commandVersion(haproxy.binary, ['-v'], /version (\S+)/) }),
      start: (upstream) => startExternalTarget('haproxy', 'binary' in haproxy ? haproxy.binary : 'haproxy', haproxyArgs(upstream), prefix),
    },
  ];
  return specs;
}
