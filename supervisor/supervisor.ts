import type { SwitchyardConfig } from '../lib/config.ts';
import { withDeadline } from '../lib/deadline.ts';
import { parseFatalReport } from '../lib/fatal-report.ts';
import type { Logger } from '../lib/log.ts';
import type { ProxyWorkerState } from '../lib/fleet-channel.ts';
import { CrashTracker } from './crash-tracker.ts';
import { DrainCoordinator, RESTART_TIMEOUT_MS } from './drain-coordinator.ts';
import { EventLog, HISTORY_READ_TIMEOUT_MS } from './event-log.ts';
import { Fleet, poolSummary, proxyStateOf, type FleetWorker, type WorkerState } from './fleet.ts';
import { FleetPublisher, type FleetRedisOptions } from './fleet-publisher.ts';
import { fetchHealth, HealthPoller } from './health-poller.ts';
import type { HistoryStore, LaneMinute } from './history/types.ts';
import { SupervisorMetrics } from './metrics.ts';
import { mergeExpositions } from './metrics-merge.ts';
import { ProxyDirectory } from './proxy-directory.ts';
import { selfHostView, SiteView } from './site-view.ts';
import { reachableAt, siteOf, type Site } from '../lib/site.ts';
import { fleetKey } from '../lib/fleet-signing.ts';
import type { Pm2Client, Pm2ProcessEvent, Pm2ProcessMessage } from './pm2-client.ts';
import type { ProxyControlClient } from './proxy-control.ts';
import { recycleReason } from './recycle-policy.ts';
import { ConfigReloader, type ReloadResult } from './config-reload.ts';
import { PoolResizer } from './pool-resizer.ts';

export interface SupervisorTiming {
  healthIntervalMs: number;
  healthTimeoutMs: number;
  /** re-push draining/ready to the proxies and re-read `pm2 list` this often */
  reconcileMs: number;
  /** fetch finished lane minutes from the proxy this often */
  laneMinutesMs: number;
  drainPollMs: number;
}

/** How long a reload waits for the workers it adds to pass their health checks before the proxies hear of them. */
const RELOAD_READY_TIMEOUT_MS = 60_000;

export const DEFAULT_TIMING: SupervisorTiming = {
  healthIntervalMs: 1000,
  healthTimeoutMs: 2000,
  reconcileMs: 3000,
  laneMinutesMs: 15_000,
  drainPollMs: 100,
};

export interface SupervisorOptions {
  config: SwitchyardConfig;
  log: Logger;
  pm2: Pm2Client;
  /** this host's proxy (the first; its lane minutes go to the history); with Redis the others are discovered (ProxyDirectory) */
  proxies: ProxyControlClient[];
  /** Redis for fleet messages to proxies on other hosts (signed with a key from the admin token) */
  redis?: FleetRedisOptions;
  /** the config file, read again by `reload()` (without one, reload is refused) */
  configFile?: string;
  timing?: Partial<SupervisorTiming>;
}

/**
 * The fleet supervisor: watches workers (PM2 events and health polls), recycles them by policy
 * or on request through the drain coordinator, and keeps the proxies' view of the fleet in line.
 */
export class Supervisor {
  readonly fleet: Fleet;
  readonly events: EventLog;
  readonly coordinator: DrainCoordinator;
  readonly publisher: FleetPublisher;
  /** every proxy of the site: this host's, and with Redis every one announced there */
  readonly proxyDirectory: ProxyDirectory;
  readonly metrics: SupervisorMetrics;
  readonly timing: SupervisorTiming;
  readonly site: Site;
  /** the other hosts, on a site of several hosts (with Redis) */
  readonly siteView: SiteView | undefined;
  private history: HistoryStore | undefined;
  private readonly poller: HealthPoller;
  private readonly crashes = new CrashTracker();
  private readonly timers: NodeJS.Timeout[] = [];
  private laneMinutesSince: Date | undefined;
  private currentConfig: SwitchyardConfig;
  private readonly reloader: ConfigReloader | undefined;

  constructor(private readonly options: SupervisorOptions) {
    const { config, log } = options;
    this.currentConfig = config;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.site = siteOf(config);
    this.fleet = new Fleet(config, Math.random, this.site);
    this.events = new EventLog(log, this.site.multiHost ? this.site.self.name : undefined);
    this.siteView =
      this.site.multiHost && options.redis
        ? new SiteView({
            redisUrl: options.redis.url,
            key: fleetKey(options.redis.adminToken),
            site: this.site,
            config: () => this.currentConfig,
            fleet: this.fleet,
            supervisorUrl: `http://${reachableAt(config.supervisor.host, config.supervisor.port, this.site.self.address)}`,
            recycles: () => this.metrics.recycleCounts(),
            log,
          })
        : undefined;
    this.metrics = new SupervisorMetrics(this.fleet, this.site.self.name, this.siteView);
    this.proxyDirectory = new ProxyDirectory({
      local: options.proxies[0],
      localId: `${this.site.self.name}:${config.proxy.port}`,
      selfHost: this.site.self.name,
      token: options.redis?.adminToken ?? '',
      redis: options.redis,
      log,
    });
    this.publisher = new FleetPublisher(() => this.proxyDirectory.clients(), options.redis, log);
    this.coordinator = new DrainCoordinator(
      this.fleet,
      {
        inflight: (worker) => this.inflight(worker),
        restart: (worker) => this.restart(worker),
        waitHealthy: (worker, previousPid, timeoutMs) => this.waitHealthy(worker, previousPid, timeoutMs),
        recycled: (worker, reason) => this.metrics.recycled(worker.pool, reason),
        ...(this.siteView ? { siteTakeOut: (worker: FleetWorker) => this.siteView!.takeOut(worker) } : {}),
      },
      this.events,
      { pollMs: this.timing.drainPollMs, restartTimeoutMs: RESTART_TIMEOUT_MS },
    );
    this.poller = new HealthPoller(this.fleet, { intervalMs: this.timing.healthIntervalMs, timeoutMs: this.timing.healthTimeoutMs }, (workers) =>
      this.applyPolicy(workers),
    );
    this.fleet.on('state', (worker: FleetWorker, previous: WorkerState, reason?: string) => this.onStateChange(worker, previous, reason));
    if (options.configFile) {
      const resizer = new PoolResizer({
        fleet: this.fleet,
        coordinator: this.coordinator,
        events: this.events,
        pm2: options.pm2,
        refreshPm2: () => this.refreshPm2(),
        configFile: options.configFile,
        readyTimeoutMs: RELOAD_READY_TIMEOUT_MS,
        pollMs: this.timing.drainPollMs,
      });
      this.reloader = new ConfigReloader({
        configFile: options.configFile,
        log,
        fleet: this.fleet,
        events: this.events,
        publisher: this.publisher,
        proxies: () => options.proxies,
        resizer,
        config: () => this.currentConfig,
        setConfig: (next) => (this.currentConfig = next),
        history: () => this.history,
      });
    }
  }

  async start(): Promise<void> {
    await this.options.pm2.connect();
    await this.options.pm2.onProcessEvent((event) => this.onPm2Event(event));
    await this.options.pm2.onProcessMessage((message) => this.onPm2Message(message));
    await this.refreshPm2();
    await this.proxyDirectory.start(); // bounded: one Redis read and one /state per proxy, each with a timeout
    this.events.record({ kind: 'start', detail: { pools: [...this.fleet.pools.keys()], proxies: this.proxyDirectory.list().map((proxy) => `${proxy.id} ${proxy.control}`) } });
    this.poller.start();
    this.siteView?.start();
    this.every(this.timing.reconcileMs, () => this.reconcile());
    this.every(this.timing.laneMinutesMs, () => this.collectLaneMinutes());
  }

  /** Hands events and lane minutes to the history store from now on (it may open after start). */
  attachHistory(history: HistoryStore): void {
    this.history = history;
    history.setRetentionDays(this.currentConfig.supervisor.historyDays); // a reload may have come first
    this.events.attach(history);
  }

  historyStatus() {
    return this.history?.status();
  }

  /** The config in force: the one started with, or the last reloaded (less what cannot change live). */
  get config(): SwitchyardConfig {
    return this.currentConfig;
  }

  /** Reads the config file again and applies it here and to the proxies (supervisor/config-reload.ts). */
  reload(source: string): Promise<ReloadResult> {
    if (!this.reloader) return Promise.reject(new Error('this supervisor was started without a config file to reload'));
    return this.reloader.reload(source);
  }

  /** Per-minute lane stats from the history store; rejects while it is not open or unreachable. */
  async laneHistory(since: Date, lane?: string): Promise<LaneMinute[]> {
    if (!this.history) throw new Error('history store not open');
    return withDeadline(this.history.laneStats({ since, lane }), HISTORY_READ_TIMEOUT_MS, 'reading the lane history');
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.poller.stop();
    this.coordinator.stop();
    await this.siteView?.close();
    this.events.record({ kind: 'stop' });
    await this.collectLaneMinutes();
    await this.publisher.close();
    await this.proxyDirectory.stop();
    this.options.pm2.disconnect();
  }

  /**
   * The site at a glance: this host's workers as this supervisor sees them, the other hosts'
   * as their supervisors last reported them (a gone host's as down), every pool of the config
   * that runs anywhere.
   */
  snapshot() {
    const local = new Map(this.fleet.snapshot().map((pool) => [pool.name, pool]));
    const remote = this.siteView?.remoteWorkers() ?? [];
    // another host's pool this config does not have (its layout differs: hosts[].sameLayout says so) is not shown
    const poolNames = [...new Set([...local.keys(), ...remote.map((worker) => worker.pool)])].filter((name) => local.has(name) || this.currentConfig.pools[name]);
    return {
      host: this.site.self.name,
      hosts: this.siteView?.hosts() ?? [selfHostView(this.site.self, null, this.fleet.all().length)],
      pools: poolNames.map((name) => {
        const pool = local.get(name) ?? poolSummary(name, this.currentConfig.pools[name]);
        const own = (local.get(name)?.workers ?? []).map((worker) => ({ ...worker, host: worker.host ?? this.site.self.name, pendingRecycle: this.coordinator.pendingReason(worker.name) }));
        const others = remote.filter((worker) => worker.pool === name).map((worker) => ({ ...worker, state: worker.state as WorkerState, pendingRecycle: undefined }));
        return { ...pool, workers: [...own, ...others] };
      }),
      proxies: this.proxyDirectory.list(),
      redis: Boolean(this.options.redis),
      history: this.historyStatus() ?? null,
    };
  }

  /** Every proxy's series, labelled `proxy="<id>"`, with `switchyard_proxy_up`; then the supervisor's own. */
  async metricsText(): Promise<string> {
    const [proxies, own] = await Promise.all([this.proxyDirectory.metricSources(), this.metrics.text()]);
    return mergeExpositions([...proxies, { text: own, labels: {} }]);
  }

  private every(ms: number, task: () => Promise<unknown>): void {
    let running = false;
    this.timers.push(
      setInterval(() => {
        if (running) return;
        running = true;
        task()
          .catch((error: Error) => this.options.log.warn({ err: error.message }, 'supervisor: periodic task failed'))
          .finally(() => (running = false));
      }, ms),
    );
  }

  private onStateChange(worker: FleetWorker, previous: WorkerState, reason: string | undefined): void {
    this.options.log.info({ worker: worker.name, from: previous, to: worker.state, reason }, 'worker state changed');
    this.siteView?.soon();
    if (proxyStateOf(previous) !== proxyStateOf(worker.state)) {
      void this.publisher.publish({ [worker.name]: proxyStateOf(worker.state) });
    }
    if (previous === 'down' && worker.state === 'ready') this.events.record({ kind: 'ready', pool: worker.pool, worker: worker.name, reason });
  }

  private applyPolicy(workers: FleetWorker[]): void {
    for (const worker of workers) {
      if (worker.state !== 'ready' || !worker.health || worker.retiring) continue;
      const reason = recycleReason(worker.limits, worker.health);
      if (reason) this.coordinator.requestRecycle(worker.name, reason);
    }
    this.coordinator.tick();
  }

  private onPm2Event({ event, process }: Pm2ProcessEvent): void {
    const worker = this.fleet.byPm2(process.name, process.instance);
    if (!worker) return;
    worker.pmId = process.pmId;
    if (event === 'restart overlimit') {
      this.events.record({ kind: 'crash', pool: worker.pool, worker: worker.name, reason: 'PM2 gave up restarting it (too many unstable restarts)' });
      return;
    }
    if (event !== 'exit' || this.coordinator.isBusy(worker.name)) return; // our own restarts exit too
    const stoppedOnPurpose = process.status === 'stopping';
    this.fleet.setState(worker, 'down', stoppedOnPurpose ? 'stopped through PM2' : 'crashed');
    if (stoppedOnPurpose) {
      this.events.record({ kind: 'stop', pool: worker.pool, worker: worker.name, reason: 'stopped or restarted through PM2' });
      return;
    }
    const { inWindow, loop } = this.crashes.record(worker.name);
    this.events.record({
      kind: 'crash',
      pool: worker.pool,
      worker: worker.name,
      reason: loop ? 'crash loop: PM2 restarts it with exponential backoff' : 'worker exited unexpectedly',
      detail: { crashesLastMinute: inWindow, crashLoop: loop, pid: worker.pid },
    });
  }

  /** A process that reports why it is exiting (a worker whose port is taken) becomes a fleet event. */
  private onPm2Message({ name, data }: Pm2ProcessMessage): void {
    const report = parseFatalReport(data);
    if (!report) return;
    const worker = report.pool !== undefined && report.index !== undefined ? this.fleet.byPm2(`worker-${report.pool}`, report.index) : undefined;
    this.events.record({ kind: 'error', pool: worker?.pool, worker: worker?.name, reason: report.message, detail: { app: name, ...report.detail } });
  }

  private async refreshPm2(): Promise<void> {
    for (const process of await this.options.pm2.list()) {
      const worker = this.fleet.byPm2(process.name, process.instance);
      if (!worker) continue;
      worker.pmId = process.pmId;
      worker.restarts = process.restarts;
    }
  }

  private async restart(worker: FleetWorker): Promise<void> {
    if (worker.pmId === undefined) await this.refreshPm2();
    if (worker.pmId === undefined) throw new Error(`PM2 runs no process for ${worker.name} (app worker-${worker.pool})`);
    await this.options.pm2.restart(worker.pmId);
  }

  private async inflight(worker: FleetWorker): Promise<number> {
    // The worker's own count also covers proxies we cannot ask (other hosts, over Redis).
    const [viaProxies, health] = await Promise.all([
      this.publisher.proxyInflight(worker.name),
      fetchHealth(worker.host, worker.port, this.timing.healthTimeoutMs),
    ]);
    return viaProxies + (health?.inflight ?? 0);
  }

  private async waitHealthy(worker: FleetWorker, previousPid: number | undefined, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const health = await fetchHealth(worker.host, worker.port, this.timing.healthTimeoutMs);
      this.fleet.observeHealth(worker, health);
      if (health && health.pid !== previousPid) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  }

  /** Re-pushes what the proxies should know (a restarted proxy starts with every worker ready). */
  private async reconcile(): Promise<void> {
    await this.refreshPm2().catch((error: Error) => this.options.log.warn({ err: error.message }, 'supervisor: pm2 list failed'));
    await this.publisher.reconcile(() => this.desiredProxyStates());
  }

  /** Draining and restarting workers stay out; ready ones are pushed only while their health is fresh. */
  private desiredProxyStates(): Record<string, ProxyWorkerState> {
    const fresh = Date.now() - 3 * this.timing.healthIntervalMs;
    const desired: Record<string, ProxyWorkerState> = {};
    for (const worker of this.fleet.all()) {
      if (worker.state === 'draining' || worker.state === 'restarting') desired[worker.name] = 'draining';
      else if (worker.state === 'ready' && worker.healthAt >= fresh) desired[worker.name] = 'ready';
    }
    return desired;
  }

  /** This host's proxy's finished minutes (each host's supervisor records its own proxy's). */
  private async collectLaneMinutes(): Promise<void> {
    const proxy = this.proxyDirectory.local;
    if (!proxy || !this.history) return;
    const minutes = await proxy.finishedMinutes(this.laneMinutesSince).catch(() => []);
    for (const minute of minutes) {
      this.history.recordLaneMinute({ ...minute, proxy: this.proxyDirectory.localId });
      if (!this.laneMinutesSince || minute.minute > this.laneMinutesSince) this.laneMinutesSince = minute.minute;
    }
  }
}
