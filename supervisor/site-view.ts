import { Redis } from 'ioredis';
import type { SwitchyardConfig } from '../lib/config.ts';
import { FLEET_MESSAGE_MAX_AGE_MS, FLEET_MESSAGE_MAX_BYTES, signHostReport, verifyHostReport } from '../lib/fleet-signing.ts';
import { HOST_GONE_MS, HOST_REPORT_MS, HOSTS_KEY, type HostReport, type ReportedWorker } from '../lib/host-report.ts';
import type { Logger } from '../lib/log.ts';
import { poolAddresses, poolHosts, siteLayoutDigest, workerName, type Site } from '../lib/site.ts';
import { ThrottledLog } from '../lib/throttled-log.ts';
import { canTakeOut } from './drain-coordinator.ts';
import type { Fleet, FleetWorker, WorkerState } from './fleet.ts';
import { SiteLeases, type OwnWorkers } from './site-leases.ts';

/** A Redis command unanswered within this fails: the next heartbeat tries again. */
const REDIS_COMMAND_TIMEOUT_MS = 2000;
// KEYS: the hosts hash. ARGV: the largest report read, then the other hosts' names. Their reports,
// false for a missing or oversized one: anyone who can write to Redis can stuff the hash, and
// every supervisor reads it every HOST_REPORT_MS.
const READ_REPORTS = `
local reports = {}
for i = 2, #ARGV do
  if redis.call('HSTRLEN', KEYS[1], ARGV[i]) <= tonumber(ARGV[1]) then reports[i - 1] = redis.call('HGET', KEYS[1], ARGV[i]) else reports[i - 1] = false end
end
return reports
`;

/** A lease asked for is reported as out until its worker's state changes, or this long (a drain follows its lease at once). */
const LEASE_HOLD_MS = HOST_REPORT_MS;

export interface SiteHostView {
  name: string;
  address: string;
  /** this supervisor's own host */
  self: boolean;
  /** its supervisor reported within HOST_GONE_MS (always true for this host) */
  up: boolean;
  /** ISO time of its last report, null when none was seen */
  lastSeenAt: string | null;
  /** its supervisor's API, from its report */
  supervisor: string | null;
  workers: number;
  /** false when its config lays the site out otherwise than this one's (siteLayoutDigest); null when unknown */
  sameLayout: boolean | null;
}

/** This supervisor's own host in the site view: up, now, with its own layout. */
export function selfHostView(host: { name: string; address: string }, supervisor: string | null, workers: number, now = Date.now()): SiteHostView {
  return { ...host, self: true, up: true, lastSeenAt: new Date(now).toISOString(), supervisor, workers, sameLayout: true };
}

/** Another host's worker, as its supervisor last reported it (down once that host is gone). */
export type RemoteWorker = ReportedWorker & { host: string; hostUp: boolean };

export interface SiteViewOptions {
  redisUrl: string;
  /** the fleet signing key (lib/fleet-signing.ts) */
  key: Buffer;
  site: Site;
  config: () => SwitchyardConfig;
  fleet: Fleet;
  /** this supervisor's API base URL, as the other hosts reach it */
  supervisorUrl: string;
  recycles: () => HostReport['recycles'];
  log: Logger;
}

/**
 * One supervisor's view of a site of several hosts, over Redis: every HOST_REPORT_MS it reports
 * its host's workers (signed, in the `switchyard:hosts` hash) and its pools' ready workers and
 * leases (site-leases.ts), and reads the other hosts' reports. A host whose reports stop is gone;
 * the config still names it, so the view says which one. With Redis down, the last reports are
 * kept (and age into "gone"), and no worker may leave rotation: nobody can tell what the other
 * hosts have out.
 */
export class SiteView {
  private readonly redis: Redis;
  private readonly leases: SiteLeases;
  private readonly reports = new Map<string, HostReport>();
  /** when (on this host's clock) each host's report last changed: hosts' clocks need to agree to within FLEET_MESSAGE_MAX_AGE_MS, not HOST_GONE_MS */
  private readonly changedAt = new Map<string, number>();
  /** this host's ready workers whose lease was asked for, and when: a heartbeat must not give it back before their drain starts */
  private readonly held = new Map<string, number>();
  private readonly ignored: ThrottledLog;
  private readonly impostor: ThrottledLog;
  private readonly mismatch: ThrottledLog;
  private readonly startedAt = new Date().toISOString();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private again = false;
  private warned = false;

  constructor(private readonly options: SiteViewOptions) {
    this.redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: REDIS_COMMAND_TIMEOUT_MS, enableOfflineQueue: false });
    this.redis.on('error', (error: Error) => this.warnOnce(error));
    this.redis.on('ready', () => {
      this.warned = false;
      this.soon();
    });
    this.leases = new SiteLeases(this.redis);
    options.fleet.on('state', (worker: FleetWorker) => this.held.delete(worker.name));
    this.ignored = new ThrottledLog(options.log);
    this.impostor = new ThrottledLog(options.log, 60_000, 'error');
    this.mismatch = new ThrottledLog(options.log, 60_000, 'error');
  }

  start(): void {
    this.timer = setInterval(() => this.soon(), HOST_REPORT_MS);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.beating?.catch(() => {});
    this.redis.disconnect();
  }

  /** A heartbeat now (after a state change), coalesced with one that runs. */
  soon(): void {
    if (this.beating) {
      this.again = true;
      return;
    }
    this.beating = this.beat().finally(() => {
      this.beating = undefined;
      if (this.again) {
        this.again = false;
        this.soon();
      }
    });
  }

  /**
   * Resolves once a heartbeat that began after this call has ended (each Redis command bounded):
   * what this host's workers are now is in Redis, so a drain asked anywhere next counts it.
   */
  async flush(): Promise<void> {
    this.soon();
    while (this.beating) await this.beating;
  }

  /** undefined when the site can spare `worker` now (its lease taken), else why not. */
  async takeOut(worker: FleetWorker): Promise<string | undefined> {
    const config = this.options.config();
    const pool = config.pools[worker.pool];
    if (!pool) return `pool ${worker.pool} is not in the config`;
    try {
      const siteWorkers = poolAddresses(pool, config).map((placed) => workerName(worker.pool, placed.index, placed.siteHost));
      // held from before the script is sent: a heartbeat sent after it reports the worker out
      this.held.set(worker.name, Date.now());
      const leaseRefusal = await this.leases.takeOut(worker.pool, worker.name, siteWorkers, pool.maxUnavailable);
      if (leaseRefusal === undefined) await this.read(); // the reports as they are now (an undrain just answered elsewhere is in them)
      const refusal = leaseRefusal ?? this.refusalByReports(worker, siteWorkers, pool.maxUnavailable);
      if (refusal !== undefined) this.held.delete(worker.name);
      if (refusal !== undefined && leaseRefusal === undefined) this.soon(); // the next heartbeat gives the lease back
      return refusal;
    } catch (error) {
      this.held.delete(worker.name);
      this.soon(); // a lease taken before the failure is given back by the next heartbeat
      return `Redis is unreachable (${(error as Error).message}), so what the other hosts have out is unknown`;
    }
  }

  /**
   * Why the hosts' signed reports (and this host's own states) say the site cannot spare `worker`,
   * if they do. The lease sets are unsigned: whoever can write to Redis could pass a draining
   * worker of another host as ready there, so the leases alone never make a worker sparable.
   */
  private refusalByReports(worker: FleetWorker, siteWorkers: readonly string[], maxUnavailable: number): string | undefined {
    const states = new Map<string, string>(this.remoteWorkers().map((remote) => [remote.name, remote.state]));
    for (const own of this.options.fleet.all()) states.set(own.name, own.state);
    const workers = siteWorkers.map((name) => ({ name, state: (states.get(name) ?? 'down') as WorkerState }));
    if (canTakeOut(workers, worker.name, maxUnavailable)) return undefined;
    const ready = workers.filter((entry) => entry.state === 'ready').length;
    if (ready < 2) return "it is the last ready worker of its pool on the site (as the hosts' reports say)";
    return `${workers.length - ready} of the pool's ${workers.length} workers on the site are out (maxUnavailable ${maxUnavailable}), as the hosts' reports say`;
  }

  /** Every host of the config, this one first. */
  hosts(now = Date.now()): SiteHostView[] {
    const { site, fleet } = this.options;
    return site.hosts
      .map((host) => {
        if (host.name === site.self.name) {
          return selfHostView(host, this.options.supervisorUrl, fleet.all().length, now);
        }
        const report = this.reports.get(host.name);
        return {
          ...host,
          self: false,
          up: this.isUp(host.name, now),
          lastSeenAt: report ? new Date(report.at).toISOString() : null,
          supervisor: report?.supervisor ?? null,
          workers: report?.workers.length ?? 0,
          sameLayout: report?.layout === undefined ? null : report.layout === siteLayoutDigest(this.options.config()),
        };
      })
      .sort((a, b) => Number(b.self) - Number(a.self));
  }

  /** The other hosts' workers as last reported; those of a gone host are down. */
  remoteWorkers(now = Date.now()): RemoteWorker[] {
    return [...this.reports.values()].flatMap((report) => {
      const hostUp = this.isUp(report.host, now);
      return report.workers.map((worker) => ({ ...worker, host: report.host, hostUp, ...(hostUp ? {} : { state: 'down', inflight: undefined }) }));
    });
  }

  /** The other hosts' recycle counters, as last reported. */
  remoteRecycles(): Array<HostReport['recycles'][number] & { host: string }> {
    return [...this.reports.values()].flatMap((report) => report.recycles.map((entry) => ({ ...entry, host: report.host })));
  }

  /**
   * The host and supervisor of another host's worker: the host whose report names it, else the
   * host the config places it on (gone, or its supervisor null, when it never reported).
   */
  ownerOf(worker: string): { host: string; supervisor: string | null; up: boolean } | undefined {
    for (const report of this.reports.values()) {
      if (report.workers.some((reported) => reported.name === worker)) return { host: report.host, supervisor: report.supervisor, up: this.isUp(report.host) };
    }
    const config = this.options.config();
    for (const [pool, poolConfig] of Object.entries(config.pools)) {
      if (poolConfig.targets) continue;
      const placed = poolAddresses(poolConfig, config).find((candidate) => workerName(pool, candidate.index, candidate.siteHost) === worker);
      if (placed?.siteHost !== undefined && placed.siteHost !== this.options.site.self.name) {
        return { host: placed.siteHost, supervisor: this.reports.get(placed.siteHost)?.supervisor ?? null, up: this.isUp(placed.siteHost) };
      }
    }
    return undefined;
  }

  /** The other hosts the config runs `pool` on that are gone (or never reported), with their last known supervisor. */
  goneHostsOf(pool: string): Array<{ host: string; supervisor: string | null }> {
    const config = this.options.config();
    const poolConfig = config.pools[pool];
    if (!poolConfig || poolConfig.targets) return [];
    const runsIt = new Set(poolHosts(config, poolConfig).map((host) => host.name));
    return this.hosts()
      .filter((host) => !host.self && !host.up && runsIt.has(host.name))
      .map((host) => ({ host: host.name, supervisor: host.supervisor }));
  }

  /** The other hosts that are up, with their supervisors. */
  liveHosts(): Array<{ host: string; supervisor: string; pools: Set<string> }> {
    const now = Date.now();
    return [...this.reports.values()]
      .filter((report) => this.isUp(report.host, now))
      .map((report) => ({ host: report.host, supervisor: report.supervisor, pools: new Set(report.workers.map((worker) => worker.pool)) }));
  }

  /** Whether another host's report changed within HOST_GONE_MS. */
  private isUp(host: string, now = Date.now()): boolean {
    return now - (this.changedAt.get(host) ?? -Infinity) <= HOST_GONE_MS;
  }

  private async beat(): Promise<void> {
    try {
      await this.publish();
      await this.read();
    } catch (error) {
      this.warnOnce(error as Error);
    }
  }

  private async publish(): Promise<void> {
    const { fleet, site, key } = this.options;
    const workers = fleet.all();
    const report: HostReport = {
      host: site.self.name,
      supervisor: this.options.supervisorUrl,
      startedAt: this.startedAt,
      layout: siteLayoutDigest(this.options.config()),
      at: Date.now(),
      workers: workers.map(reportedWorker),
      recycles: this.options.recycles(),
    };
    await this.redis.hset(HOSTS_KEY, site.self.name, signHostReport(key, report));
    for (const pool of fleet.pools.values()) await this.leases.heartbeat(pool.name, this.ownWorkers(pool.workers));
  }

  private async read(): Promise<void> {
    const { site, key } = this.options;
    // only the hosts the config names: another is not ours to show
    const others = site.hosts.map((host) => host.name).filter((name) => name !== site.self.name);
    const texts = (await this.redis.eval(READ_REPORTS, 1, HOSTS_KEY, FLEET_MESSAGE_MAX_BYTES, ...others, site.self.name)) as Array<string | null>;
    this.checkOwnField(texts[others.length]);
    for (const [i, host] of others.entries()) {
      const text = texts[i];
      if (typeof text !== 'string') continue;
      const verified = verifyHostReport(key, host, text);
      if (!verified.ok) {
        this.ignored.write({ host, reason: verified.reason }, 'site view: ignoring a host report that is not signed with the fleet key, or is stale');
        continue;
      }
      const previous = this.reports.get(host);
      if (previous && verified.at <= previous.at) continue;
      // A newer report arrived just now, if its time is within the clocks' agreement; else (a
      // first one, or a replay of a dead host's old ones) it is as old as it says.
      const now = Date.now();
      this.changedAt.set(host, previous && Math.abs(now - verified.at) <= FLEET_MESSAGE_MAX_AGE_MS ? now : Math.min(now, verified.at));
      this.reports.set(host, verified.value);
      this.checkLayout(verified.value);
    }
  }

  /** Another host whose config lays the site out differently: the leases' counts would disagree. */
  private checkLayout(report: HostReport): void {
    if (report.layout === undefined || report.layout === siteLayoutDigest(this.options.config())) return;
    this.mismatch.write(
      { host: report.host, theirs: report.layout, ours: siteLayoutDigest(this.options.config()) },
      `site view: host ${report.host} runs a config with other hosts or pools (instances, hosts, maxUnavailable...): give every host the same config file, or drains may not be counted alike`,
    );
  }

  /** Just after this supervisor's report, its host's field holds another's: two machines run as one host. */
  private checkOwnField(text: string | null): void {
    const { key, site, supervisorUrl } = this.options;
    const verified = typeof text === 'string' ? verifyHostReport(key, site.self.name, text) : undefined;
    if (!verified?.ok || (verified.value.startedAt === this.startedAt && verified.value.supervisor === supervisorUrl)) return;
    this.impostor.write(
      { host: site.self.name, supervisor: verified.value.supervisor, startedAt: verified.value.startedAt },
      `site view: another supervisor reports as this host ${site.self.name}: is SWITCHYARD_HOST=${site.self.name} set on two machines? Each host's stack must run with its own name`,
    );
  }

  /** This host's workers of a pool for the site leases: ready, out (draining, restarting, or their lease held) or neither. */
  private ownWorkers(workers: readonly FleetWorker[]): OwnWorkers {
    const own: OwnWorkers = { ready: [], out: [], other: [] };
    const heldSince = Date.now() - LEASE_HOLD_MS;
    for (const worker of workers) {
      if (worker.state === 'ready' && (this.held.get(worker.name) ?? -Infinity) >= heldSince) own.out.push(worker.name);
      else if (worker.state === 'ready' && !worker.retiring) own.ready.push(worker.name);
      else if (worker.state === 'draining' || worker.state === 'restarting') own.out.push(worker.name);
      else own.other.push(worker.name);
    }
    return own;
  }

  private warnOnce(error: Error): void {
    if (this.warned) return;
    this.warned = true;
    this.options.log.warn({ err: error.message }, 'site view: Redis unavailable; other hosts are seen as last reported, and no worker may leave rotation');
  }
}

function reportedWorker(worker: FleetWorker): ReportedWorker {
  const { name, pool, index, state, stateSince, address, pid, restarts, inflight, served, rssBytes, uptimeSec, limits } = worker.snapshot();
  return { name, pool, index, state, stateSince, address, pid, restarts, inflight, served, rssBytes, uptimeSec, limits };
}
