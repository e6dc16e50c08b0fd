import { createHash } from 'node:crypto';
import os from 'node:os';
import { ConfigError, type PoolConfig, type SwitchyardConfig } from './config.ts';

// A site: the hosts one config describes. Without `hosts` it is this machine alone, and every
// name and address is what it was before sites existed.

export interface SiteHost {
  name: string;
  /** where the other hosts reach this one: its workers, proxy control API and supervisor */
  address: string;
}

export interface Site {
  multiHost: boolean;
  /** the host this process runs on */
  self: SiteHost;
  hosts: SiteHost[];
}

type Env = Record<string, string | undefined>;

/**
 * The site of a config, seen from this process: which host it is on comes from SWITCHYARD_HOST,
 * else from the machine's hostname when that names a host. Throws a ConfigError otherwise (a
 * process that does not know its host would start another host's workers).
 */
export function siteOf(config: Pick<SwitchyardConfig, 'hosts'>, env: Env = process.env, hostname = os.hostname()): Site {
  if (!config.hosts) {
    const self = { name: env.SWITCHYARD_HOST || hostname, address: '127.0.0.1' };
    return { multiHost: false, self, hosts: [self] };
  }
  const hosts = Object.entries(config.hosts).map(([name, host]) => ({ name, address: host.address }));
  const name = env.SWITCHYARD_HOST || hostname;
  const self = hosts.find((host) => host.name === name);
  if (!self) {
    const choices = hosts.map((host) => host.name).join(', ');
    const why = env.SWITCHYARD_HOST ? `SWITCHYARD_HOST=${name} is not one of the hosts` : `SWITCHYARD_HOST is not set and this machine's hostname "${hostname}" is not one of the hosts`;
    throw new ConfigError('the environment', [`${why}: expected SWITCHYARD_HOST=<one of ${choices}>`]);
  }
  return { multiHost: true, self, hosts };
}

const WILDCARDS: ReadonlySet<string> = new Set(['0.0.0.0', '::', '']);

/** `host:port` as others reach a listener on `listenHost`: a wildcard is reached at `wildcardAddress`; IPv6 in brackets. */
export function reachableAt(listenHost: string, port: number, wildcardAddress: string): string {
  const host = WILDCARDS.has(listenHost) ? wildcardAddress : listenHost;
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** A supervised worker's name: `<pool>-<index>` on a single host, `<pool>-<host>-<index>` on a site of several. */
export function workerName(pool: string, index: number, siteHost?: string): string {
  return siteHost === undefined ? `${pool}-${index}` : `${pool}-${siteHost}-${index}`;
}

/** A worker's place: its index on its host (PM2 instance), its host's name on a site of several, and address. */
export interface PlacedWorker {
  index: number;
  /** the site host it runs on (absent on a single host, and for static targets) */
  siteHost?: string;
  host: string;
  port: number;
}

/** The hosts a supervised pool runs on, in config order. */
export function poolHosts(config: Pick<SwitchyardConfig, 'hosts'>, pool: Pick<PoolConfig, 'hosts'>): SiteHost[] {
  const hosts = Object.entries(config.hosts ?? {}).map(([name, host]) => ({ name, address: host.address }));
  return pool.hosts ? hosts.filter((host) => pool.hosts!.includes(host.name)) : hosts;
}

/**
 * Every worker of a pool on every host, in order: static targets as given; supervised instances
 * on portBase+i of the pool's host, or of each of its site hosts.
 */
export function poolAddresses(pool: PoolConfig, config: Pick<SwitchyardConfig, 'hosts'> = {}): PlacedWorker[] {
  if (pool.targets) {
    return pool.targets.map((target, index) => {
      const split = target.lastIndexOf(':');
      return { index, host: target.slice(0, split).replace(/^\[|\]$/g, ''), port: Number(target.slice(split + 1)) };
    });
  }
  const instances = (host: string, siteHost?: string) =>
    Array.from({ length: pool.instances }, (_, index) => ({ index, ...(siteHost === undefined ? {} : { siteHost }), host, port: pool.portBase + index }));
  if (!config.hosts) return instances(pool.host);
  return poolHosts(config, pool).flatMap((host) => instances(host.address, host.name));
}

/** Whether a supervised pool has workers on this host (what its supervisor starts and watches). */
export function poolRunsOn(config: Pick<SwitchyardConfig, 'hosts'>, pool: PoolConfig, site: Site): boolean {
  if (pool.targets) return false;
  return !site.multiHost || poolHosts(config, pool).some((host) => host.name === site.self.name);
}

/** A site of several hosts shares its fleet state over Redis: without REDIS_URL a process of one would act alone. */
export function requireRedisForSite(site: Site, env: Env = process.env): void {
  if (site.multiHost && !env.REDIS_URL) {
    throw new ConfigError('the environment', [`REDIS_URL is not set: a site of several hosts (hosts: ${site.hosts.map((host) => host.name).join(', ')}) shares its fleet state over Redis`]);
  }
}

/**
 * A digest of what the hosts of a site must agree on to count each other's workers alike: the
 * hosts and every supervised pool's workers and drain limits. Each host's supervisor computes
 * site-wide leases from its own config, so two hosts with different layouts (a reload applied on
 * one only) could together take out more than either allows: the site view names such a host.
 */
export function siteLayoutDigest(config: Pick<SwitchyardConfig, 'hosts' | 'pools'>): string {
  const pools = Object.entries(config.pools)
    .filter(([, pool]) => !pool.targets)
    .map(([name, pool]) => [name, pool.instances, pool.portBase, pool.hosts ?? null, pool.maxUnavailable, pool.concurrency]);
  return createHash('sha256').update(JSON.stringify({ hosts: config.hosts ?? null, pools })).digest('base64url').slice(0, 16);
}
