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
import { ConnectionTracker } from './connections.ts';
import { Forwarder, hasBody, type Exchange } from './forwarder.ts';
import { HealthChecker } from './health-check.ts';
import { Pool } from './pool.ts';
import { acceptProxyProtocol } from './proxy-protocol.ts';
import { rejectSocket, sendError } from './responses.ts';
import { createStaticHandler } from './static.ts';
import { ProxyStats } from './stats.ts';
import { ControlServer } from './control.ts';
import { Upstream, type UpstreamState } from './upstream.ts';
import { adminToken } from '../lib/admin-token.ts';

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
  private readonly config: SwitchyardConfig;
  private readonly log: Logger;
  private draining = false;
  private closing = false;
  private inflight = 0;

  constructor(options: SwitchyardProxyOptions) {
    const { config, log } = options;
    this.config = config;
    this.log = log;
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
    this.connections = new ConnectionTracker(proxyConfig.clients);
    this.stats = new ProxyStats(
      [...this.pools.values()],
      this.connections,
      Object.fromEntries(Object.values(this.routes).map((route) => [route.lane, route.pool])),
    );
    this.serveStatic = createStaticHandler(proxyConfig.static);
    this.forwarder = new Forwarder(proxyConfig, log);
    this.health = new HealthChecker([...this.pools.values()], proxyConfig.healthCheck, log);

    this.server = http.createServer({
      // The parser's own cap sits above both of ours, so we can answer 414 and 431 precisely.
      maxHeaderSize: proxyConfig.limits.maxHeaderBytes + proxyConfig.limits.maxUrlBytes,
      requestTimeout: 0,
      headersTimeout: proxyConfig.limits.headersTimeoutMs,
      keepAliveTimeout: 0, // idle timeouts are per class, in ConnectionTracker
      requireHostHeader: true,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(proxyConfig.limits.headersTimeoutMs / 4))),
    });
    this.server.maxRequestsPerSocket = 0;
    this.wrapConnectionHandling();
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as Socket, head));
    this.server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) =>
      this.onClientError(error, socket),
    );
    for (const pool of this.pools.values()) {
      pool.on('state', (upstream: Upstream, previous: string) =>
        log.info({ worker: upstream.name, from: previous, to: upstream.state }, 'worker state changed'),
      );
    }
  }

  async listen(port = this.config.proxy.port, host = this.config.proxy.host): Promise<number> {
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
    this.control = new ControlServer(this, adminToken(this.config.data).token, this.log);
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
      pools: [...this.pools.values()].map((pool) => ({
        name: pool.name,
        queueDepth: pool.queueDepth,
        ...pool.stats,
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
      const peer = normalizeAddress(socket.remoteAddress ?? '');
      const admit = (clientAddress: string, exempt: boolean) => {
        if (this.closing) return socket.destroy();
        if (!this.connections.admit(socket, clientAddress, exempt, this.trusted.has(clientAddress))) {
          this.log.warn({ client: clientAddress }, 'too many connections from one client');
          return rejectSocket(socket, 503, 'too many connections from your address', 'Retry-After: 1\r\n');
        }
        parseHttp.call(this.server, socket);
      };
      const trustedPeer = this.trusted.has(peer);
      if (!trustedPeer || !this.config.proxy.proxyProtocol) return admit(peer, trustedPeer);
      acceptProxyProtocol(socket, { timeoutMs: this.config.proxy.limits.headersTimeoutMs }, (result) => {
        if (!result.ok) {
          this.log.warn({ peer, reason: result.reason }, 'bad PROXY protocol header');
          return socket.destroy();
        }
        if (result.remoteAddress) {
          setConnectionClientAddress(socket, normalizeAddress(result.remoteAddress));
          admit(normalizeAddress(result.remoteAddress), false);
        } else {
          admit(peer, true);
        }
      });
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    const problem = this.requestProblem(req);
    if (problem) return sendError(res, problem.status, problem.reason, { connection: 'close' });
    if (url === HEALTH_PATH || url.startsWith(`${HEALTH_PATH}?`)) return this.serveHealth(res);

    const connection = this.connections.get(req.socket);
    const client = this.clientOf(req, req.socket, connection);
    const { path, query } = splitUrl(url);
    const requestClass = this.classifier.classify({
      method: req.method ?? 'GET',
      path,
      query,
      headers: req.headers,
      clientIp: client.ip,
    });
    const closeConnection = this.connections.requestStarted(connection, requestClass);
    const startedAt = performance.now();
    let exchange: Exchange | undefined;
    this.inflight++;
    res.on('close', () => {
      this.inflight--;
      this.connections.requestFinished(connection);
      if (exchange) this.forwarder.clientClosed(exchange);
      this.exchangeEnded(requestClass, req, res, startedAt, client.ip, exchange);
    });
    // Read once, while the headers are still the client's (the upstream's may lose or gain framing).
    const chunkedBody = req.headers['transfer-encoding'] !== undefined;
    if (!this.guardRequestBody(req, res, requestClass, chunkedBody)) return;

    if (requestClass === 'static') {
      if (closeConnection) res.setHeader('connection', 'close');
      res.setHeader('x-switchyard-lane', 'static');
      return this.serveStatic(req, res);
    }
    const route = this.routes[requestClass];
    req.headers = upstreamHeaders(req.headers, client);
    exchange = {
      req,
      res,
      lane: route.lane,
      pool: route.pool,
      balancer: route.balancer,
      priority: route.priority,
      clientIp: client.ip,
      closeConnection,
      chunkedBody,
      startedAt,
      worker: undefined,
      retried: false,
      sends: 0,
      resetRetried: false,
      error: undefined,
    };
    this.forwarder.forward(exchange);
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

  /** 413 for bodies over the limit; 408 when the whole request does not arrive within its class's time. */
  private guardRequestBody(req: http.IncomingMessage, res: http.ServerResponse, requestClass: RequestClass, chunkedBody: boolean): boolean {
    const maxBody = this.config.proxy.limits.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (maxBody > 0 && declared > maxBody) {
      sendError(res, 413, 'request body too large', { connection: 'close' });
      return false;
    }
    if (req.complete || !hasBody(req)) return true;
    // Both watches start when the body starts flowing to a worker. A request waiting in the queue
    // is not read (its wait is governed by the queue timeout), and a 'data' listener attached
    // before then would switch the body to flowing and drop it on the floor.
    const { requestTimeoutMs } = this.config.proxy.clients[requestClass];
    const countChunked = maxBody > 0 && chunkedBody;
    req.once('resume', () => {
      const timer = setTimeout(() => {
        this.log.warn({ url: req.url }, 'request body did not arrive in time');
        sendError(res, 408, 'request timed out', { connection: 'close' });
        req.socket.destroy();
      }, requestTimeoutMs);
      req.once('end', () => clearTimeout(timer));
      req.once('close', () => clearTimeout(timer));
      if (countChunked) {
        let received = 0;
        req.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > maxBody) {
            sendError(res, 413, 'request body too large', { connection: 'close' });
            req.socket.destroy();
          }
        });
      }
    });
    return true;
  }

  /** What the proxy refuses in any request line and headers that Node's parser let through. */
  private requestProblem(req: http.IncomingMessage): { status: 400 | 414 | 431; reason: string } | undefined {
    const url = req.url ?? '/';
    const limits = this.config.proxy.limits;
    // UTF-8 takes at most 3 bytes per UTF-16 unit, so most URLs need no byte count
    if (url.length * 3 > limits.maxUrlBytes && Buffer.byteLength(url) > limits.maxUrlBytes) return { status: 414, reason: 'URL too long' };
    if (headerBytes(req) > limits.maxHeaderBytes) return { status: 431, reason: 'request headers too large' };
    const host = req.headers.host;
    if (host !== undefined && !VALID_HOST.test(host)) return { status: 400, reason: 'invalid Host header' };
    return undefined;
  }

  private onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const problem = this.requestProblem(req);
    if (problem) return rejectSocket(socket, problem.status, problem.reason);
    if (this.draining) return rejectSocket(socket, 503, 'shutting down', 'Retry-After: 1\r\n');
    const client = this.clientOf(req, socket);
    const { path, query } = splitUrl(req.url ?? '/');
    const requestClass = this.classifier.classify({ method: req.method ?? 'GET', path, query, headers: req.headers, clientIp: client.ip });
    if (requestClass === 'static') return rejectSocket(socket, 404, 'no WebSocket endpoint under the static prefix');
    const route = this.routes[requestClass];
    const ready = route.pool.upstreams.filter((upstream) => upstream.state === 'ready');
    const upstream = ready.sort((a, b) => a.inflight - b.inflight)[0];
    if (!upstream) return rejectSocket(socket, 503, 'no worker available', 'Retry-After: 1\r\n');
    this.connections.upgraded(socket);
    req.headers = upstreamHeaders(req.headers, client, { upgrade: true });
    this.forwarder.upgrade(req, socket, head, route.lane, upstream);
  }

  private onClientError(error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
    const code = error.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE') return void socket.destroy();
    this.log.warn({ err: code || error.message, peer: socket.remoteAddress }, 'malformed request');
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

  /** One place for what every request leaves behind: its stats and, when it failed or at debug, a log line. */
  private exchangeEnded(
    requestClass: RequestClass,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    startedAt: number,
    clientIp: string,
    exchange: Exchange | undefined,
  ): void {
    // 499 (nginx's "client closed request") when the client left before the response was complete
    const status = res.writableFinished ? res.statusCode : 499;
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
