import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { CidrSet } from '../lib/cidr.ts';
import { siteOf } from '../lib/site.ts';
import { OWN_STACK_ID } from '../lib/stack-id.ts';
import { summarizeChanges } from '../lib/config-diff.ts';
import { AccessLog } from './access-log.ts';
import type { Lane, ProxyConfig, SwitchyardConfig } from '../lib/config.ts';
import type { Logger } from '../lib/log.ts';
import { ThrottledLog } from '../lib/throttled-log.ts';
import { Classifier } from './classify.ts';
import { ConnectionTracker } from './connections.ts';
import { containSocket } from './containment.ts';
import { CloneSpool, type CloneSpoolConfig } from './clone-sharing/clone-spool.ts';
import { ShareStage } from './clone-sharing/share-stage.ts';
import { Forwarder } from './forwarder.ts';
import type { RetiringSlots } from './handoff.ts';
import { HealthChecker } from './health-check.ts';
import type { Route } from './exchange.ts';
import type { Pool } from './pool.ts';
import { buildPools, reconcilePools, RetiredWorkers } from './pool-set.ts';
import { planReload, reloadFrom, type ReloadOutcome, type ReloadResult } from './reload.ts';
import { RequestPath, type RequestPathParts } from './request-path.ts';
import { rejectSocket } from './responses.ts';
import { Scheduler } from './scheduler.ts';
import type { BodyStore } from './request-body.ts';
import { SpoolStore } from './spool-store.ts';
import { createStaticHandler } from './static.ts';
import { ProxyStats } from './stats.ts';
import type { Upstream, UpstreamState } from './upstream.ts';
import { installConnectionGate } from './stages/admit.ts';
import { BodyStage } from './stages/body.ts';
import { RequestRecorder } from './stages/record.ts';
import { buildRoutes } from './stages/route.ts';

/** how long the access log may take at shutdown to write what it still holds (a stuck disk must not hold the exit) */
const ACCESS_LOG_FLUSH_MS = 1000;

export interface SwitchyardProxyOptions {
  config: SwitchyardConfig;
  log: Logger;
  /** reads the config file the proxy was started with, afresh (reloadConfig); throws ConfigError */
  source?: () => SwitchyardConfig;
}

export { buildPools } from './pool-set.ts';

/** Node's parser cap sits above both of ours, so we can answer 414 and 431 precisely. */
const parserHeaderCap = (config: ProxyConfig) => config.limits.maxHeaderBytes + config.limits.maxUrlBytes;

const responseSpoolBudget = (config: ProxyConfig) => ({
  spoolDir: config.streaming.spoolDir,
  perClientBytes: config.streaming.spoolPerClientBytes,
  spoolTotalBytes: config.streaming.spoolTotalBytes,
  memoryTotalBytes: 0,
});

const cloneSpoolConfig = (config: ProxyConfig): CloneSpoolConfig => ({
  dir: config.cloneSharing.dir!,
  ttlSec: config.cloneSharing.ttlSec,
  maxDiskBytes: config.cloneSharing.maxDiskBytes,
});

const poolsOfLanes = (routes: Record<Lane, Route>) => Object.fromEntries(Object.values(routes).map((route) => [route.lane, route.pool]));

/**
 * The front proxy process's parts, wired: the listener, the request path (request-path.ts, where
 * the stages are listed in order), the pools, the periodic work, and the lifecycle (listen, drain,
 * shutdown). Nothing here handles a request itself.
 */
export class SwitchyardProxy {
  readonly server: http.Server;
  readonly pools: Map<string, Pool>;
  readonly connections: ConnectionTracker;
  readonly stats: ProxyStats;
  private readonly path: RequestPath;
  private readonly forwarder: Forwarder;
  private readonly health: HealthChecker;
  private readonly scheduler = new Scheduler();
  private readonly bodies: BodyStore;
  private readonly responseSpool: SpoolStore;
  private readonly cloneSpool: CloneSpool;
  private readonly accessLog: AccessLog | undefined;
  private readonly recorder: RequestRecorder;
  /** what any client can cause over and over is logged once a minute, with a count of the rest */
  private readonly faults: { refused: ThrottledLog; malformed: ThrottledLog; bodies: ThrottledLog };
  /** workers a reload took out, closed once they have finished */
  private readonly retired = new RetiredWorkers();
  private readonly source: (() => SwitchyardConfig) | undefined;
  /** the config in force: the one started with, then each reload's (less what cannot change live) */
  private config: SwitchyardConfig;
  private readonly log: Logger;
  private draining = false;
  private retirement: Promise<void> | undefined;
  private closing = false;

  constructor(options: SwitchyardProxyOptions) {
    const { config, log } = options;
    this.config = config;
    this.log = log;
    this.source = options.source;
    const proxyConfig = config.proxy;
    const trusted = new CidrSet(proxyConfig.trustedProxies);
    this.pools = buildPools(config);
    const routes = buildRoutes(config, this.pools);
    this.connections = new ConnectionTracker(proxyConfig.clients, { headersTimeoutMs: proxyConfig.limits.headersTimeoutMs });
    this.bodies = new SpoolStore(proxyConfig.bodies);
    this.responseSpool = new SpoolStore(responseSpoolBudget(proxyConfig));
    this.cloneSpool = new CloneSpool(cloneSpoolConfig(proxyConfig));
    this.stats = new ProxyStats([...this.pools.values()], this.connections, poolsOfLanes(routes), () => this.cloneSpool.usage);
    this.accessLog = proxyConfig.accessLog.enabled ? new AccessLog(proxyConfig.accessLog, log) : undefined;
    this.health = new HealthChecker(this.pools, proxyConfig.healthCheck, log, OWN_STACK_ID, siteOf(config).self.name);
    const faults = (this.faults = { refused: new ThrottledLog(log), malformed: new ThrottledLog(log), bodies: new ThrottledLog(log) });
    this.forwarder = new Forwarder(proxyConfig, config.lanes, this.responseSpool, log, { tunnelOpened: (exchange) => this.path.tunnelOpened(exchange) });
    this.recorder = new RequestRecorder(this.stats, log, this.accessLog);
    this.path = new RequestPath(this.buildParts(config, trusted, routes));

    this.server = http.createServer({
      maxHeaderSize: parserHeaderCap(proxyConfig),
      requestTimeout: 0,
      headersTimeout: proxyConfig.limits.headersTimeoutMs,
      keepAliveTimeout: 0, // idle timeouts are per class, in ConnectionTracker
      // Node would answer these requests itself (400 without Host, 417 for an Expect it does not
      // know) behind our back, out of turn on a connection with pipelined requests: we do it.
      requireHostHeader: false,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(proxyConfig.limits.headersTimeoutMs / 4))),
    });
    this.server.maxRequestsPerSocket = 0;
    installConnectionGate(this.server, {
      settings: () => ({ config: this.config.proxy, trusted: this.path.current.trusted }),
      connections: this.connections,
      log,
      refusedLog: faults.refused,
      closing: () => this.closing,
    });
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => this.path.onRequest(req, res);
    this.server.on('request', onRequest);
    this.server.on('checkContinue', onRequest);
    this.server.on('checkExpectation', onRequest);
    this.server.on('upgrade', (req, socket, head) => this.path.onUpgrade(req, socket as Socket, head));
    this.server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) =>
      containSocket(log, socket, () => this.onClientError(error, socket, faults.malformed)),
    );
    for (const pool of this.pools.values()) this.watch(pool);
  }

  private watch(pool: Pool): void {
    pool.on('state', (upstream: Upstream, previous: string) =>
      this.log.info({ worker: upstream.name, from: previous, to: upstream.state }, 'worker state changed'),
    );
  }

  /** What a request is handled with under `config` (request-path.ts): built at start and by each reload. */
  private buildParts(config: SwitchyardConfig, trusted: CidrSet, routes: Record<Lane, Route>): RequestPathParts {
    return {
      config,
      log: this.log,
      trusted,
      connections: this.connections,
      classifier: new Classifier(config),
      routes,
      serveStatic: createStaticHandler(config.proxy.static),
      body: new BodyStage(this.bodies, config, this.faults.bodies, (exchange, run) => this.forwarder.contain(exchange, run)),
      share: new ShareStage(this.cloneSpool, this.stats.cloneCache, this.bodies, config.proxy, config.lanes, (exchange, run) => this.forwarder.contain(exchange, run), this.log),
      forwarder: this.forwarder,
      recorder: this.recorder,
      draining: () => this.draining,
      upgradeProtocols: new Set(config.proxy.upgrades.protocols),
    };
  }

  /**
   * Applies a changed config without dropping a connection (docs/proxy.md, "Reloading the
   * config"). What a running proxy cannot change (NOT_LIVE in lib/config-diff.ts) is reported
   * in notApplied and left as it was, never half-applied.
   */
  reload(next: SwitchyardConfig): ReloadResult {
    const { config, applied, notApplied } = planReload(this.config, next);
    if (applied.length > 0) this.apply(config);
    this.log.info({ changes: summarizeChanges(applied), notApplied: summarizeChanges(notApplied) }, 'config reloaded');
    return { applied, notApplied };
  }

  /** Reads the config file the proxy started with and applies it (control API, SIGHUP); an invalid one changes nothing. */
  reloadConfig(): ReloadOutcome {
    if (!this.source) return { ok: false, error: 'this proxy was started without a config file', problems: [] };
    const outcome = reloadFrom(this.source, (next) => this.reload(next));
    if (!outcome.ok) this.log.warn({ problems: outcome.problems }, `config reload refused: ${outcome.error}`);
    return outcome;
  }

  /**
   * The pools and the long-lived parts (connections, spools, forwarder, health checks, stats,
   * the listener's limits) take the new settings in place; the parts a request is handled with
   * are rebuilt and swapped in at once. A request on its way keeps the route and parts it began
   * with; kept workers keep their slots, state and sockets (pool-set.ts).
   */
  private apply(config: SwitchyardConfig): void {
    const proxyConfig = config.proxy;
    const trusted = new CidrSet(proxyConfig.trustedProxies);
    const change = reconcilePools(this.pools, config, this.retired);
    for (const pool of change.newPools) this.watch(pool);
    for (const { pool, upstreams } of change.added) this.health.adopt(pool, upstreams);
    const routes = buildRoutes(config, this.pools);
    this.connections.reconfigure(proxyConfig.clients, { headersTimeoutMs: proxyConfig.limits.headersTimeoutMs });
    this.connections.retrust((ip) => trusted.has(ip));
    this.bodies.resize(proxyConfig.bodies);
    this.responseSpool.resize(responseSpoolBudget(proxyConfig));
    this.cloneSpool.reconfigure(cloneSpoolConfig(proxyConfig));
    this.forwarder.reconfigure(proxyConfig, config.lanes);
    this.health.setOptions(proxyConfig.healthCheck);
    this.stats.setPools([...this.pools.values()], poolsOfLanes(routes));
    // read by Node for each new connection; open ones keep the parser they have
    this.server.headersTimeout = proxyConfig.limits.headersTimeoutMs;
    (this.server as http.Server & { maxHeaderSize: number }).maxHeaderSize = parserHeaderCap(proxyConfig);
    this.config = config;
    this.path.replaceParts(this.buildParts(config, trusted, routes));
    if (this.server.listening && !this.closing) {
      this.scheduler.stop();
      this.schedulePeriodicWork();
    }
    const names = (upstreams: Upstream[]) => upstreams.map((upstream) => upstream.name);
    if (change.added.length > 0 || change.retired.length > 0) {
      this.log.info({ added: change.added.flatMap(({ upstreams }) => names(upstreams)), retired: names(change.retired) }, 'workers added and retired');
    }
  }

  async listen(port = this.config.proxy.port, host = this.config.proxy.host): Promise<number> {
    this.bodies.prepare();
    this.responseSpool.prepare();
    this.cloneSpool.prepare();
    this.accessLog?.open();
    this.server.listen(port, host);
    await once(this.server, 'listening');
    this.schedulePeriodicWork();
    return (this.server.address() as AddressInfo).port;
  }

  /** Everything the proxy does on a clock, in one place. */
  private schedulePeriodicWork(): void {
    const idleMs = this.config.proxy.upstream.idleSocketTimeoutMs;
    this.scheduler.every('health checks', this.health.intervalMs, () => void this.health.checkAll(), true);
    this.scheduler.every('idle client connections', 100, () => this.connections.closeExpiredIdle(Date.now()));
    this.scheduler.every('worker deadlines', this.forwarder.sweepIntervalMs, () => this.forwarder.expireDeadlines(Date.now()));
    this.scheduler.every('idle worker sockets', Math.min(1000, Math.max(50, Math.floor(idleMs / 8))), () => this.closeIdleUpstreamSockets());
    this.scheduler.every('stats sample', 1000, () => this.stats.sample());
    this.scheduler.every('clone spool expiry', 1000, () => this.cloneSpool.expire());
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Graceful shutdown: /healthz turns 503 first (so a load balancer stops sending), then the
   * listener closes, idle connections close, in-flight requests finish (up to graceMs).
   */
  async shutdown(): Promise<void> {
    // a stop while retiring lets the retirement finish (it is bounded by the same grace period)
    if (this.retirement) return this.retirement;
    if (this.draining) return;
    this.draining = true;
    const { healthFailLeadMs, graceMs } = this.config.proxy.shutdown;
    this.log.info({ healthFailLeadMs, graceMs, inflight: this.path.inflight }, 'shutdown: draining');
    if (healthFailLeadMs > 0) await new Promise((resolve) => setTimeout(resolve, healthFailLeadMs));
    await this.windDown(() => this.connections.beginShutdown(), () => this.path.inflight === 0);
    this.log.info('shutdown: done');
  }

  /**
   * This process is being replaced by a successor that already listens (proxy/master.ts). Unlike a
   * shutdown, /healthz stays green (a load balancer's keep-alive probe may still land here) and no
   * idle connection is closed early, which would race a request on its way (nginx reload's
   * reset): each connection gets `Connection: close` on its next response, and an idle one closes
   * at its idle timeout as on any day. Worker slots go to the successor as they free
   * (handoff.ts). Resolves when no request and no connection is left, or graceMs after.
   */
  retire(handoff: RetiringSlots): Promise<void> {
    if (this.draining || this.retirement) return this.retirement ?? Promise.resolve();
    this.retirement = this.retireNow(handoff);
    return this.retirement;
  }

  private async retireNow(handoff: RetiringSlots): Promise<void> {
    this.log.info({ graceMs: this.config.proxy.shutdown.graceMs, inflight: this.path.inflight, connections: this.connections.size }, 'retiring: a successor took over the listener');
    handoff.begin();
    await this.windDown(() => this.connections.retire(), () => this.path.inflight === 0 && this.connections.size === 0, { keepIdle: true });
    this.log.info('retiring: done');
  }

  /** Stops accepting, lets what is in flight finish within proxy.shutdown.graceMs, then cuts the rest and stops. */
  private async windDown(begin: () => void, finished: () => boolean, options: { keepIdle?: boolean } = {}): Promise<void> {
    this.closing = true;
    // http.Server#close also closes every idle keep-alive connection at once (Node 19+): the reset
    // a request already on its way would get. A retiring process only stops listening.
    const closed = new Promise((resolve) => (options.keepIdle ? net.Server.prototype.close.call(this.server, resolve) : this.server.close(resolve)));
    begin();
    const deadline = Date.now() + this.config.proxy.shutdown.graceMs;
    while (!finished() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (!finished()) this.log.warn({ inflight: this.path.inflight, connections: this.connections.size }, 'grace period over, cutting connections');
    this.connections.destroyAll();
    this.scheduler.stop();
    for (const pool of this.pools.values()) pool.close();
    this.retired.closeAll();
    this.forwarder.close();
    await closed;
    await this.accessLog?.close(ACCESS_LOG_FLUSH_MS);
  }

  /** Opens the access log's path afresh, after log rotation moved the file away (SIGUSR1). */
  reopenAccessLog(): void {
    if (!this.accessLog) return;
    this.log.info({ path: this.accessLog.path }, 'access log: reopening');
    this.accessLog.reopen();
  }

  /** Everything an operator or the supervisor needs to see, as plain data. */
  snapshot() {
    return {
      draining: this.draining,
      inflight: this.path.inflight,
      connections: this.connections.counts(),
      /** request bodies the proxy holds right now, in memory and in temp files */
      bodies: this.bodies.usage,
      /** responses waiting in temp files for clients slower than their workers */
      responseSpool: this.responseSpool.usage,
      /** clone sharing: requests by result since start, and the spool's disk use and entries now */
      cloneSharing: { requests: this.stats.cloneCache.totals(), ...this.cloneSpool.usage },
      /** workers a config reload took out that are still finishing what they had */
      retiredWorkers: this.retired.names(),
      pools: [...this.pools.values()].map((pool) => ({
        name: pool.name,
        queueDepth: pool.queueDepth,
        ...pool.stats,
        /** the clients holding the most workers and queue places right now, per lane */
        topClients: pool.topClients(5),
        workers: pool.upstreams.map((upstream) => upstream.snapshot()),
      })),
    };
  }

  /** Snapshot plus per-lane statistics: what the control API's /state returns. */
  state() {
    return { ...this.snapshot(), lanes: this.stats.summary() };
  }

  /** Sets a worker's state (drains come from the supervisor); returns its snapshot, or undefined. */
  /**
   * The supervisor's word on a worker. "ready" lifts a drain; it does not overrule this proxy's own
   * health checks: a worker they took out comes back when it answers them. Otherwise a worker this
   * proxy cannot reach (another host, across a partial network split) while its supervisor can
   * would be put back every few seconds, and every request sent to it would wait for a connect
   * timeout.
   */
  setWorkerState(name: string, state: UpstreamState) {
    for (const pool of this.pools.values()) {
      const upstream = pool.upstreams.find((candidate) => candidate.name === name);
      if (upstream) {
        if (!(state === 'ready' && upstream.state === 'down')) pool.setState(upstream, state);
        return upstream.snapshot();
      }
    }
    return undefined;
  }

  private closeIdleUpstreamSockets(): void {
    const now = Date.now();
    for (const pool of this.pools.values()) for (const upstream of pool.upstreams) upstream.closeIdleSockets(now);
    for (const upstream of this.retired.closeFinished()) this.forwarder.forget(upstream);
  }

  private onClientError(error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket, malformedLog: ThrottledLog): void {
    const code = error.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE') return void socket.destroy();
    malformedLog.write({ err: code || error.message, peer: socket.remoteAddress }, 'malformed request');
    // An error in a request pipelined behind ones still owed an answer: a raw error would land
    // before or inside theirs, so they are answered, then the connection closes. An error in the
    // request being answered (its body cut or malformed) ends the connection at once, as before.
    const connection = this.connections.get(socket);
    const current = (socket as Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
    const aboutLaterRequest = current?.req?.complete !== false;
    if (connection && aboutLaterRequest && this.connections.closeWhenAnswered(connection)) return;
    if (code === 'HPE_HEADER_OVERFLOW') {
      // No line break yet in what overflowed: it is the request line itself, so the URL is too long.
      const requestLineEnded = error.rawPacket ? error.rawPacket.includes('\r\n') || error.rawPacket.includes('\n') : true;
      return requestLineEnded ? rejectSocket(socket, 431, 'request headers too large') : rejectSocket(socket, 414, 'URL too long');
    }
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return rejectSocket(socket, 408, 'request timed out');
    rejectSocket(socket, 400, 'malformed request');
  }
}
