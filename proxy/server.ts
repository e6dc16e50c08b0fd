import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';
import { CidrSet, normalizeAddress } from '../lib/cidr.ts';
import type { Lane, RequestClass, SwitchyardConfig } from '../lib/config.ts';
import type { Logger } from '../lib/log.ts';
import { createBalancer, type Balancer } from './balancer.ts';
import { Classifier, splitUrl } from './classify.ts';
import { type ClientInfo, connectionClientAddress, resolveClient, setConnectionClientAddress } from './client-address.ts';
import { upstreamHeaders } from './upstream-headers.ts';
import { ConnectionTracker, type TrackedConnection } from './connections.ts';
import { fairShareKey } from './fair-share-key.ts';
import { Forwarder, hasBody, type Exchange } from './forwarder.ts';
import { RequestBody, type BodyFailure, type BodyStore } from './request-body.ts';
import { SpoolStore } from './spool-store.ts';
import { isUnderPrefix, parseRequestTarget } from './request-target.ts';
import { responseOnUpgradeSocket } from './tunnel.ts';
import { HealthChecker } from './health-check.ts';
import { Pool } from './pool.ts';
import { acceptProxyProtocol } from './proxy-protocol.ts';
import { rejectSocket, sendError } from './responses.ts';
import { createStaticHandler } from './static.ts';
import { ProxyStats } from './stats.ts';
import { ControlServer } from './control.ts';
import { Upstream, type UpstreamState } from './upstream.ts';
import { adminToken } from '../lib/admin-token.ts';
import { ThrottledLog } from '../lib/throttled-log.ts';

const HEALTH_PATH = '/healthz';
// read once: performance.timeOrigin is a getter that calls into the runtime
const TIME_ORIGIN = performance.timeOrigin;
// RFC 3986 host: reg-name or IP literal, optional port.
const VALID_HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(:\d{1,5})?$/;

interface LaneRoute {
  lane: Lane;
  pool: Pool;
  balancer: Balancer;
  priority: number;
}

export interface SwitchyardProxyOptions {
  config: SwitchyardConfig;
  log: Logger;
  /** for the control API; read from the data directory when not given (tests) */
  adminToken?: string;
}

/** Builds the upstream list of each pool: static targets, or supervised instances on portBase+i. */
export function buildPools(config: SwitchyardConfig): Map<string, Pool> {
  const pools = new Map<string, Pool>();
  for (const [name, poolConfig] of Object.entries(config.pools)) {
    const addresses = poolConfig.targets
      ? poolConfig.targets.map((target) => {
          const split = target.lastIndexOf(':');
          return { host: target.slice(0, split).replace(/^\[|\]$/g, ''), port: Number(target.slice(split + 1)) };
        })
      : Array.from({ length: poolConfig.instances }, (_, index) => ({ host: poolConfig.host, port: poolConfig.portBase + index }));
    const upstreams = addresses.map(
      (address, index) =>
        new Upstream({
          pool: name,
          index,
          ...address,
          concurrency: poolConfig.concurrency,
          idleSocketTimeoutMs: config.proxy.upstream.idleSocketTimeoutMs,
        }),
    );
    pools.set(name, new Pool(name, poolConfig, upstreams));
  }
  return pools;
}

/**
 * The front proxy: classifies each request, routes its lane to a pool, and forwards it with
 * per-worker slots, a bounded queue and streaming. Static files are served from disk here.
 */
export class SwitchyardProxy {
  readonly server: http.Server;
  readonly pools: Map<string, Pool>;
  readonly connections: ConnectionTracker;
  readonly stats: ProxyStats;
  private control: ControlServer | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private upstreamSweeper: NodeJS.Timeout | undefined;
  controlPort: number | undefined;
  private readonly routes: Record<Lane, LaneRoute>;
  private readonly classifier: Classifier;
  private readonly forwarder: Forwarder;
  private readonly health: HealthChecker;
  private readonly trusted: CidrSet;
  private readonly serveStatic: ReturnType<typeof createStaticHandler>;
  private readonly bodies: BodyStore;
  private readonly responseSpool: SpoolStore;
  private readonly upgradeProtocols: ReadonlySet<string>;
  private readonly config: SwitchyardConfig;
  private readonly adminToken: string | undefined;
  private readonly log: Logger;
  /** what any client can cause over and over is logged once a minute, with a count of the rest */
  private readonly clientFaults: { refused: ThrottledLog; malformed: ThrottledLog; bodies: ThrottledLog };
  private draining = false;
  private closing = false;
  private inflight = 0;

  constructor(options: SwitchyardProxyOptions) {
    const { config, log } = options;
    this.adminToken = options.adminToken;
    this.config = config;
    this.log = log;
    this.clientFaults = { refused: new ThrottledLog(log), malformed: new ThrottledLog(log), bodies: new ThrottledLog(log) };
    const proxyConfig = config.proxy;
    this.trusted = new CidrSet(proxyConfig.trustedProxies);
    this.classifier = new Classifier(config);
    this.pools = buildPools(config);
    this.routes = Object.fromEntries(
      Object.entries(config.lanes).map(([lane, laneConfig]) => [
        lane,
        { lane, pool: this.pools.get(laneConfig.pool)!, balancer: createBalancer(laneConfig.balance), priority: laneConfig.priority },
      ]),
    ) as Record<Lane, LaneRoute>;
    this.connections = new ConnectionTracker(proxyConfig.clients, { headersTimeoutMs: proxyConfig.limits.headersTimeoutMs });
    this.stats = new ProxyStats(
      [...this.pools.values()],
      this.connections,
      Object.fromEntries(Object.values(this.routes).map((route) => [route.lane, route.pool])),
    );
    this.serveStatic = createStaticHandler(proxyConfig.static);
    this.bodies = new SpoolStore(proxyConfig.bodies);
    this.upgradeProtocols = new Set(proxyConfig.upgrades.protocols);
    this.responseSpool = new SpoolStore({
      spoolDir: proxyConfig.streaming.spoolDir,
      perClientBytes: proxyConfig.streaming.spoolPerClientBytes,
      spoolTotalBytes: proxyConfig.streaming.spoolTotalBytes,
      memoryTotalBytes: 0,
    });
    this.forwarder = new Forwarder(proxyConfig, config.lanes, this.responseSpool, log, { tunnelOpened: (exchange) => this.tunnelOpened(exchange) });
    this.health = new HealthChecker([...this.pools.values()], proxyConfig.healthCheck, log);

    this.server = http.createServer({
      // The parser's own cap sits above both of ours, so we can answer 414 and 431 precisely.
      maxHeaderSize: proxyConfig.limits.maxHeaderBytes + proxyConfig.limits.maxUrlBytes,
      requestTimeout: 0,
      headersTimeout: proxyConfig.limits.headersTimeoutMs,
      keepAliveTimeout: 0, // idle timeouts are per class, in ConnectionTracker
      // Node would answer these requests itself (400 without Host, 417 for an Expect it does not
      // know) behind our back, out of turn on a connection with pipelined requests: we do it.
      requireHostHeader: false,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(proxyConfig.limits.headersTimeoutMs / 4))),
    });
    this.server.maxRequestsPerSocket = 0;
    this.wrapConnectionHandling();
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('checkContinue', (req, res) => this.onRequest(req, res));
    this.server.on('checkExpectation', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as Socket, head));
    this.server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) =>
      this.containedSocket(socket, () => this.onClientError(error, socket)),
    );
    for (const pool of this.pools.values()) {
      pool.on('state', (upstream: Upstream, previous: string) =>
        log.info({ worker: upstream.name, from: previous, to: upstream.state }, 'worker state changed'),
      );
    }
  }

  async listen(port = this.config.proxy.port, host = this.config.proxy.host): Promise<number> {
    this.bodies.prepare();
    this.responseSpool.prepare();
    this.server.listen(port, host);
    await once(this.server, 'listening');
    this.health.start();
    this.connections.startSweeping();
    this.sampler = setInterval(() => this.stats.sample(), 1000);
    this.sampler.unref();
    const idleMs = this.config.proxy.upstream.idleSocketTimeoutMs;
    this.upstreamSweeper = setInterval(() => this.closeIdleUpstreamSockets(), Math.min(1000, Math.max(50, Math.floor(idleMs / 8))));
    this.upstreamSweeper.unref();
    const control = this.config.proxy.control;
    this.control = new ControlServer(this, this.adminToken ?? adminToken(this.config.data).token, this.log);
    this.controlPort = await this.control.listen(control.port, control.host);
    const actual = (this.server.address() as AddressInfo).port;
    this.log.info({ host, port: actual, controlPort: this.controlPort, pools: [...this.pools.keys()] }, 'proxy listening');
    return actual;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Graceful shutdown: /healthz turns 503 first (so a load balancer stops sending), then the
   * listener closes, idle connections close, in-flight requests finish (up to graceMs).
   */
  async shutdown(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const { healthFailLeadMs, graceMs } = this.config.proxy.shutdown;
    this.log.info({ healthFailLeadMs, graceMs, inflight: this.inflight }, 'shutdown: draining');
    if (healthFailLeadMs > 0) await new Promise((resolve) => setTimeout(resolve, healthFailLeadMs));
    this.closing = true;
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.connections.beginShutdown();
    const deadline = Date.now() + graceMs;
    while (this.inflight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (this.inflight > 0) this.log.warn({ inflight: this.inflight }, 'shutdown: grace period over, cutting connections');
    this.connections.destroyAll();
    this.health.stop();
    this.connections.stopSweeping();
    clearInterval(this.sampler);
    clearInterval(this.upstreamSweeper);
    await this.control?.close();
    for (const pool of this.pools.values()) pool.close();
    this.forwarder.close();
    await closed;
    this.log.info('shutdown: done');
  }

  /** Everything an operator or the supervisor needs to see, as plain data. */
  snapshot() {
    return {
      draining: this.draining,
      inflight: this.inflight,
      connections: this.connections.counts(),
      /** request bodies the proxy holds right now, in memory and in temp files */
      bodies: this.bodies.usage,
      /** responses waiting in temp files for clients slower than their workers */
      responseSpool: this.responseSpool.usage,
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
  setWorkerState(name: string, state: UpstreamState) {
    for (const pool of this.pools.values()) {
      const upstream = pool.upstreams.find((candidate) => candidate.name === name);
      if (upstream) {
        pool.setState(upstream, state);
        return upstream.snapshot();
      }
    }
    return undefined;
  }

  private closeIdleUpstreamSockets(): void {
    const now = Date.now();
    for (const pool of this.pools.values()) for (const upstream of pool.upstreams) upstream.closeIdleSockets(now);
  }

  /** Runs our gate (per-IP limit, PROXY protocol) before Node's HTTP parser sees a connection. */
  private wrapConnectionHandling(): void {
    const [parseHttp] = this.server.listeners('connection') as Array<(socket: Socket) => void>;
    this.server.removeAllListeners('connection');
    this.server.on('connection', (socket: Socket) => {
      socket.on('error', () => {}); // resets from clients are normal; the parser reports the rest
      this.containedSocket(socket, () => this.onConnection(socket, parseHttp));
    });
  }

  /** The boundary for what runs on a connection outside any request: a throw closes that one socket. */
  private containedSocket(socket: Socket, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.log.error({ err: error, peer: socket.remoteAddress }, 'connection failed inside the proxy');
      socket.destroy();
    }
  }

  private onConnection(socket: Socket, parseHttp: (socket: Socket) => void): void {
    const peer = normalizeAddress(socket.remoteAddress ?? '');
    const admit = (clientAddress: string, exempt: boolean): void => {
      if (this.closing) return void socket.destroy();
      if (!this.connections.admit(socket, clientAddress, exempt, this.trusted.has(clientAddress))) {
        this.clientFaults.refused.write({ client: clientAddress, connections: this.connections.size }, 'connection refused: too many from its address, or in all');
        return rejectSocket(socket, 503, 'too many connections', 'Retry-After: 1\r\n');
      }
      parseHttp.call(this.server, socket);
    };
    const trustedPeer = this.trusted.has(peer);
    if (!trustedPeer || !this.config.proxy.proxyProtocol) return admit(peer, trustedPeer);
    acceptProxyProtocol(socket, { timeoutMs: this.config.proxy.limits.headersTimeoutMs }, (result) => this.containedSocket(socket, () => {
      if (!result.ok) {
        this.log.warn({ peer, reason: result.reason }, 'bad PROXY protocol header');
        socket.destroy();
        return;
      }
      if (result.remoteAddress) {
        setConnectionClientAddress(socket, normalizeAddress(result.remoteAddress));
        admit(normalizeAddress(result.remoteAddress), false);
      } else {
        admit(peer, true);
      }
    }));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const connection = this.connections.get(req.socket);
    const handle = () => this.start(req, res, undefined, connection);
    if (!this.connections.inTurn(connection, handle)) {
      sendError(res, 503, 'too many pipelined requests', { connection: 'close', 'retry-after': '1' });
      this.stats.record(connection?.requestClass ?? 'page', 503, 0, TIME_ORIGIN + performance.now());
    }
  }

  /**
   * Upgrade requests go the way every request goes, on a response object of their own socket, in
   * their turn: one pipelined behind a request still in flight waits until that one is answered.
   */
  private onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const connection = this.connections.get(socket);
    const handle = () => this.containedSocket(socket, () => this.start(req, responseOnUpgradeSocket(req, socket), { socket, head }, connection));
    // Past maxPipelined the answers owed before it still go out; this one gets none.
    if (!this.connections.inTurn(connection, handle) && connection && !this.connections.closeWhenAnswered(connection)) socket.destroy();
  }

  /** Every request, however it is answered, is in flight on its connection until its response closes. */
  private start(req: http.IncomingMessage, res: http.ServerResponse, upgradeOffer: Exchange['upgrade'], connection: TrackedConnection | undefined): void {
    // Its turn came after the client left, or after a response that closes the connection (Node
    // then never gives the socket to the responses queued behind it): nothing to answer or hold.
    if (req.socket.destroyed || !res.socket) return;
    this.connections.requestStarted(connection);
    this.contained(req, res, () => this.handle(req, res, upgradeOffer, connection));
    // after handle's own close listener: finishing may start the connection's next pipelined request
    res.once('close', () => this.connections.requestFinished(connection));
  }

  /** The outermost containment boundary (the forwarder keeps one around each of its callbacks). */
  private contained(req: http.IncomingMessage, res: http.ServerResponse, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.log.error({ err: error, method: req.method, url: req.url, peer: req.socket.remoteAddress }, 'request failed inside the proxy');
      sendError(res, 502, 'the proxy failed on this request', { connection: 'close' });
    }
  }

  /**
   * One request, in order: its target and size (before anything parses it), the proxy's own
   * endpoints, who the client is and what it asks for, its body, then a worker. An upgrade is a
   * request of its lane: it waits for a slot and its answer like any other.
   */
  private handle(req: http.IncomingMessage, res: http.ServerResponse, upgradeOffer: Exchange['upgrade'], connection: TrackedConnection | undefined): void {
    const problem = this.sizeProblem(req);
    if (problem) return sendError(res, problem.status, problem.reason, { connection: 'close' });
    const target = parseRequestTarget(req.url ?? '/');
    if (!target.ok) return sendError(res, 400, target.reason, { connection: 'close' });
    req.url = target.path;
    if (target.host !== undefined) req.headers.host = target.host;
    const host = req.headers.host;
    if (host === undefined ? req.httpVersion === '1.1' : !VALID_HOST.test(host)) return sendError(res, 400, 'missing or invalid Host header', { connection: 'close' });
    const expect = req.headers.expect?.toLowerCase();
    if (expect !== undefined && expect !== '100-continue') return sendError(res, 417, 'unsupported expectation', { connection: 'close' });
    const url = target.path;
    if (url === HEALTH_PATH || url.startsWith(`${HEALTH_PATH}?`)) return this.serveHealth(res);
    if (isUnderPrefix(url, this.config.proxy.internalPaths)) return sendError(res, 404, 'not found');
    const upgrade = upgradeOffer && this.acceptsUpgrade(req) ? upgradeOffer : undefined;
    if (upgradeOffer && hasBody(req)) return sendError(res, 400, 'an upgrade request cannot carry a body', { connection: 'close' });

    const client = this.clientOf(req, req.socket, connection);
    const { path, query } = splitUrl(url);
    const requestClass = this.classifier.classify({
      method: req.method ?? 'GET',
      path,
      query,
      headers: req.headers,
      clientIp: client.ip,
    });
    if (upgrade && requestClass === 'static') return sendError(res, 404, 'no WebSocket endpoint under the static prefix');
    if (upgrade && this.draining) return sendError(res, 503, 'shutting down', { 'retry-after': '1' });
    const closeConnection = this.connections.classified(connection, requestClass) || upgradeOffer !== undefined;
    const startedAt = performance.now();
    let exchange: Exchange | undefined;
    this.inflight++;
    res.on('close', () => {
      if (exchange?.upgrade && exchange.tunnelled) return; // accounted for when the tunnel opened
      this.inflight--;
      if (exchange) {
        this.forwarder.clientClosed(exchange);
        exchange.body?.release();
      }
      this.exchangeEnded(requestClass, req, res.writableFinished ? res.statusCode : 499, startedAt, client.ip, exchange);
    });
    // Read once, while the headers are still the client's (the upstream's may lose or gain framing).
    const chunkedBody = req.headers['transfer-encoding'] !== undefined;
    const maxBody = this.config.proxy.limits.maxBodyBytes;
    if (maxBody > 0 && Number(req.headers['content-length'] ?? 0) > maxBody) {
      return sendError(res, 413, 'request body too large', { connection: 'close' });
    }

    if (requestClass === 'static') {
      if (closeConnection) res.setHeader('connection', 'close');
      res.setHeader('x-switchyard-lane', 'static');
      return this.serveStatic(req, res);
    }
    const route = this.routes[requestClass];
    const fairShare = fairShareKey(
      client.ip,
      requestClass === 'bot' && this.classifier.isCrawler(req.headers),
      this.classifier.knownBotToken(req.headers),
      this.trusted.has(client.ip) ? { port: req.socket.remotePort } : undefined,
    );
    if (upgrade) {
      if (!route.pool.reserveUpgrade(fairShare)) {
        return sendError(res, 503, 'too many upgraded connections', { 'retry-after': '1', 'x-switchyard-lane': route.lane });
      }
      upgrade.socket.once('close', () => route.pool.releaseUpgrade(fairShare));
    }
    exchange = {
      req,
      res,
      lane: route.lane,
      pool: route.pool,
      balancer: route.balancer,
      priority: route.priority,
      clientIp: client.ip,
      client: fairShare,
      closeConnection,
      chunkedBody,
      startedAt,
      body: hasBody(req) ? new RequestBody(this.bodies, req, this.bodyPolicy(requestClass), fairShare) : undefined,
      upgrade,
      tunnelled: false,
      worker: undefined,
      retried: false,
      sends: 0,
      resetRetried: false,
      error: undefined,
    };
    const ready = exchange;
    const clientHeaders = req.headers;
    if (!ready.body) {
      req.headers = upstreamHeaders(clientHeaders, client, { upgrade: upgrade !== undefined });
      return this.forwarder.forward(ready);
    }
    const body = ready.body;
    const refuseBody = (failure: BodyFailure) => {
      this.clientFaults.bodies.write({ url: req.url, client: client.ip, status: failure.status }, failure.reason);
      const retry: Record<string, string> = failure.status === 503 ? { 'retry-after': '1' } : {};
      sendError(res, failure.status, failure.reason, { connection: 'close', 'x-switchyard-lane': ready.lane, ...retry });
    };
    // While streaming to a worker: the answer if it can still be given, and the connection goes.
    body.onLateFailure = (failure) =>
      this.forwarder.contain(ready, () => {
        refuseBody(failure);
        req.socket.destroy();
      });
    // An HTTP/1.1 client waits for this before it sends the body (RFC 9110 10.1.1: not for HTTP/1.0).
    if (expect !== undefined && req.httpVersion === '1.1') res.writeContinue();
    body.start((failure) =>
      this.forwarder.contain(ready, () => {
        if (failure) return refuseBody(failure);
        ready.chunkedBody = chunkedBody && !body.complete;
        req.headers = upstreamHeaders(clientHeaders, client, { bufferedBodyBytes: body.complete ? body.received : undefined });
        this.forwarder.forward(ready);
      }),
    );
  }

  private bodyPolicy(requestClass: RequestClass) {
    const policy = this.config.proxy.clients[requestClass];
    return { maxBytes: this.config.proxy.limits.maxBodyBytes, bufferBytes: policy.bodyBufferBytes, timeoutMs: policy.requestTimeoutMs };
  }

  /** Only the configured Upgrade protocols (WebSocket) reach a worker; a GET is the only method that may ask. */
  private acceptsUpgrade(req: http.IncomingMessage): boolean {
    const asked = req.headers.upgrade?.trim().toLowerCase();
    return req.method === 'GET' && asked !== undefined && this.upgradeProtocols.has(asked);
  }

  /** The one place that sees a tunnel open: it is no longer a request in flight, and its 101 is recorded. */
  private tunnelOpened(exchange: Exchange): void {
    exchange.tunnelled = true;
    this.inflight--;
    this.connections.requestFinished(this.connections.get(exchange.req.socket));
    this.connections.upgraded(exchange.req.socket);
    this.exchangeEnded(exchange.lane, exchange.req, 101, exchange.startedAt, exchange.clientIp, exchange);
  }

  /**
   * Who the client is. The connection's record gives its address (the PROXY protocol's, if any)
   * and whether that is a trusted proxy, both settled when it was admitted; a socket without one
   * (already closed) is looked at afresh.
   */
  private clientOf(req: http.IncomingMessage, socket: Socket, connection = this.connections.get(socket)): ClientInfo {
    if (connection) return resolveClient(req, this.trusted, connection.ip, connection.trustedPeer);
    return resolveClient(req, this.trusted, connectionClientAddress(socket) ?? normalizeAddress(socket.remoteAddress ?? ''));
  }

  /** 414 and 431: what Node's parser let through but the configured limits do not. */
  private sizeProblem(req: http.IncomingMessage): { status: 414 | 431; reason: string } | undefined {
    const url = req.url ?? '/';
    const limits = this.config.proxy.limits;
    // UTF-8 takes at most 3 bytes per UTF-16 unit, so most URLs need no byte count
    if (url.length * 3 > limits.maxUrlBytes && Buffer.byteLength(url) > limits.maxUrlBytes) return { status: 414, reason: 'URL too long' };
    if (headerBytes(req) > limits.maxHeaderBytes) return { status: 431, reason: 'request headers too large' };
    return undefined;
  }

  private onClientError(error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
    const code = error.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE') return void socket.destroy();
    this.clientFaults.malformed.write({ err: code || error.message, peer: socket.remoteAddress }, 'malformed request');
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

  private serveHealth(res: http.ServerResponse): void {
    const status = this.draining ? 503 : 200;
    const body = JSON.stringify({ status: this.draining ? 'draining' : 'ok' });
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      ...(this.draining ? { connection: 'close' } : {}),
    });
    res.end(body);
  }

  /**
   * One place for what every request leaves behind: its stats and, when it failed or at debug, a
   * log line. The status is 499 (nginx's "client closed request") when the client left before the
   * response was complete.
   */
  private exchangeEnded(
    requestClass: RequestClass,
    req: http.IncomingMessage,
    status: number,
    startedAt: number,
    clientIp: string,
    exchange: Exchange | undefined,
  ): void {
    const endedAt = performance.now();
    const ms = endedAt - startedAt;
    this.stats.record(requestClass, status, ms / 1000, TIME_ORIGIN + endedAt);
    const failed = status >= 500 && status !== 499;
    if (!failed && !this.log.isLevelEnabled('debug')) return;
    const entry = {
      method: req.method,
      url: req.url,
      lane: requestClass,
      worker: exchange?.worker,
      status,
      ms: Math.round(ms * 10) / 10,
      client: clientIp,
      retried: exchange?.retried || undefined,
    };
    if (failed) this.log.warn({ ...entry, err: exchange?.error }, 'request failed');
    else this.log.debug(entry, 'request');
  }
}

function headerBytes(req: http.IncomingMessage): number {
  let total = 0;
  for (const part of req.rawHeaders) total += part.length + 2;
  return total;
}
