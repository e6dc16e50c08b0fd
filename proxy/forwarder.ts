import http from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import type { Lane, LaneConfig, ProxyConfig } from '../lib/config.ts';
import type { Logger } from '../lib/log.ts';
import { addProxyHeaders, type Exchange } from './exchange.ts';
import { afterSendFailure } from './retry-policy.ts';
import type { Pool, Slot } from './pool.ts';
import type { Upstream } from './upstream.ts';
import { sendError, type ErrorStatus } from './responses.ts';
import { DeadlineList, type Deadlined } from './deadline-list.ts';
import { clientResponseHeaders } from '../lib/hop-by-hop.ts';
import { joinSockets, switchingProtocolsHead } from './tunnel.ts';
import { ResponseRelay } from './response-relay.ts';
import type { SpoolStore } from './spool-store.ts';

/** One send of an exchange to one worker; its fields are all set here, for one V8 shape. */
class Attempt implements Deadlined {
  deadline = 0;
  previousInList: Deadlined | undefined = undefined;
  nextInList: Deadlined | undefined = undefined;
  proxyReq: http.ClientRequest | undefined = undefined;
  proxyRes: http.IncomingMessage | undefined = undefined;
  connectTimer: NodeJS.Timeout | undefined = undefined;
  /** the lane's bound on the whole response (undefined: the lane has none) */
  producing: ProducingDeadline | undefined = undefined;
  /** the worker connection had carried a response before (Node's reusedSocket misses sockets handed to queued requests) */
  reusedConnection = false;
  /** performance.now() when the request went to the worker */
  sentAt = 0;
  responded = false;
  failed = false;
  finished = false;
  /** the worker's answer was taken over (clone sharing): its client leaving no longer ends it */
  takenOver = false;

  constructor(
    readonly exchange: Exchange,
    readonly slot: Slot,
    readonly retried: boolean,
  ) {}
}

/** An attempt's entry in its lane's list of responses being produced (an entry of its own: an attempt is in the headers list too). */
class ProducingDeadline implements Deadlined {
  deadline = 0;
  previousInList: Deadlined | undefined = undefined;
  nextInList: Deadlined | undefined = undefined;

  constructor(readonly attempt: Attempt) {}
}

// The request's current attempt, for http-proxy-3's events, which hand back the request. (A
// WeakMap instead measured about 12% slower, presumably because every request is then a young
// key in an old table, which each scavenge has to process.)
const ATTEMPT = Symbol('switchyard.attempt');
type WithAttempt = http.IncomingMessage & { [ATTEMPT]?: Attempt };


function sweepInterval(config: ProxyConfig, lanes: Record<Lane, LaneConfig>): number {
  const timeouts = [config.upstream.responseTimeoutMs, ...Object.values(lanes).map((lane) => lane.responseTimeoutMs)].filter((ms) => ms > 0);
  return Math.min(1000, Math.max(20, Math.floor(Math.min(...timeouts, 4000) / 4)));
}

/**
 * A body the client sent chunked goes to the worker chunked: http-proxy-3 gives a DELETE or
 * OPTIONS without Content-Length a `Content-Length: 0` and drops Transfer-Encoding (its
 * deleteLength pass), yet still pipes the body, which the worker would then read as a request of
 * its own (a desync).
 */
function keepChunked(proxyReq: http.ClientRequest): void {
  if (proxyReq.getHeader('transfer-encoding') !== undefined) return; // as the client framed it
  proxyReq.removeHeader('content-length');
  proxyReq.setHeader('transfer-encoding', 'chunked');
}

/**
 * Forwards an exchange to a worker of its pool through http-proxy-3: takes a slot (or queues),
 * streams both ways with backpressure, frees the slot as soon as the worker has produced its whole
 * response, retries a body-less idempotent request on a refused connect (on each other worker)
 * or once on a reset of a reused keep-alive socket, and ejects a worker that refuses connections.
 */
export interface ForwarderHooks {
  /** a WebSocket handshake succeeded: the exchange is now a tunnel, no longer a request in flight */
  tunnelOpened(exchange: Exchange): void;
}

export class Forwarder {
  /** one per worker, its target and agent in the server options (see proxyFor) */
  private readonly proxies = new Map<Upstream, ProxyServer>();
  /** attempts still waiting for response headers, checked against their deadline by one sweep */
  private readonly awaitingHeaders = new DeadlineList<Attempt>();
  /** how often the proxy's scheduler should run expireDeadlines: a quarter of the shortest timeout, within [20 ms, 1 s] */
  sweepIntervalMs: number;

  /** per lane, attempts whose worker is still producing, against the lane's responseTimeoutMs */
  private readonly producing = new Map<Lane, DeadlineList<ProducingDeadline>>();

  constructor(
    private config: ProxyConfig,
    private lanes: Record<Lane, LaneConfig>,
    private readonly responseSpool: SpoolStore,
    private readonly log: Logger,
    private readonly hooks: ForwarderHooks,
  ) {
    for (const lane of Object.keys(lanes) as Lane[]) this.producing.set(lane, new DeadlineList());
    this.sweepIntervalMs = sweepInterval(config, lanes);
  }

  /**
   * A reload's timeouts, streaming limits and headers. A request already sent keeps the deadlines
   * it was given; what is read later (a response's relay limits, a retry's deadlines) is the new.
   */
  reconfigure(config: ProxyConfig, lanes: Record<Lane, LaneConfig>): void {
    this.config = config;
    this.lanes = lanes;
    this.sweepIntervalMs = sweepInterval(config, lanes);
  }

  /** A worker a reload removed has been closed: its http-proxy-3 server goes too. */
  forget(upstream: Upstream): void {
    this.proxies.get(upstream)?.close();
    this.proxies.delete(upstream);
  }

  /**
   * The containment boundary: every callback on an exchange's way through the proxy runs in one,
   * so a throw answers that client (502, or a cut connection once its response has begun) and is
   * logged with its request; it never reaches the process.
   */
  contain(exchange: Exchange, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.log.error({ err: error, method: exchange.req.method, url: exchange.req.url, client: exchange.clientIp }, 'request failed inside the proxy');
      this.fail(exchange, 502, 'the proxy failed on this request', {}, 'proxy error');
    }
  }

  /**
   * The worker's own http-proxy-3 server, with its target and agent as server options, so that
   * `web()` gets no per-request options. http-proxy-3 merges per-request options into the server's
   * with `{ ...serverOptions, ...requestOptions }`, and V8 gives every object built by such a double
   * spread a new hidden class: each of the ~20 option reads per request then missed V8's caches
   * and was looked up from scratch (about 8% more instructions per request, and slower ones).
   */
  private proxyFor(upstream: Upstream): ProxyServer {
    let proxy = this.proxies.get(upstream);
    if (!proxy) {
      proxy = createProxyServer({ xfwd: false, selfHandleResponse: true, target: upstream.target, agent: upstream.agent });
      proxy.on('proxyReq', (proxyReq, req) => this.withAttempt(req, (attempt) => this.onProxyReq(proxyReq, attempt)));
      proxy.on('proxyRes', (proxyRes, req) => {
        const attempt = (req as WithAttempt)[ATTEMPT];
        if (!attempt) return void proxyRes.destroy();
        this.contain(attempt.exchange, () => this.onProxyRes(proxyRes, attempt));
      });
      // A client that went away: http-proxy-3 destroys the upstream request; the slot is freed on its close.
      proxy.on('econnreset', () => {});
      // Every send passes its own error callback; this only keeps http-proxy-3 from throwing if one slips by.
      proxy.on('error', (error) => this.log.warn({ err: (error as Error).message, worker: upstream.name }, 'proxy error outside a request'));
      this.proxies.set(upstream, proxy);
    }
    return proxy;
  }

  forward(exchange: Exchange): void {
    this.contain(exchange, () => this.acquire(exchange, false));
  }

  private withAttempt(req: http.IncomingMessage, run: (attempt: Attempt) => void): void {
    const attempt = (req as WithAttempt)[ATTEMPT];
    if (attempt) this.contain(attempt.exchange, () => run(attempt));
  }

  /** A slot on a worker (pool.ts: now, or in the pool's fair queue), then the send. */
  private acquire(exchange: Exchange, retried: boolean): void {
    const { pool, res } = exchange;
    let answered = false;
    let queuedAt = 0; // stays 0 when a slot was free at once
    const onClientGone = () => cancel();
    const request = { balancer: exchange.balancer, key: exchange.clientIp, client: exchange.client, lane: exchange.lane, priority: exchange.priority };
    const cancel = pool.acquire(request, (failure, slot) => this.contain(exchange, () => {
      answered = true;
      if (queuedAt > 0) exchange.queueMs += performance.now() - queuedAt;
      res.off('close', onClientGone);
      if (failure || !slot) {
        const retryAfter = { 'retry-after': String(pool.retryAfterSec) };
        if (failure === 'client-share') this.fail(exchange, 429, 'too many of your requests are waiting for this pool', retryAfter);
        else this.fail(exchange, 503, failure === 'queue-full' ? 'queue full' : 'no worker free in time', retryAfter);
        return;
      }
      if (res.destroyed) return slot.release();
      this.send(new Attempt(exchange, slot, retried));
    }));
    if (!answered) {
      queuedAt = performance.now();
      res.once('close', onClientGone);
    }
  }

  private send(attempt: Attempt): void {
    const { exchange, slot } = attempt;
    const { req, res } = exchange;
    const upstream = slot.upstream;
    (req as WithAttempt)[ATTEMPT] = attempt;
    exchange.worker = upstream.name;
    exchange.retried = attempt.retried;
    exchange.sends++;
    attempt.sentAt = performance.now();
    const now = Date.now();
    this.awaitingHeaders.add(attempt, now + this.config.upstream.responseTimeoutMs);
    const laneTimeout = this.lanes[exchange.lane].responseTimeoutMs;
    if (laneTimeout > 0) {
      attempt.producing = new ProducingDeadline(attempt);
      this.producing.get(exchange.lane)!.add(attempt.producing, now + laneTimeout);
    }
    const onError = (error: Error) => this.contain(exchange, () => this.onError(attempt, error as NodeJS.ErrnoException));
    const proxy = this.proxyFor(upstream);
    const body = this.bodyFor(exchange, attempt);
    // http-proxy-3 ends the worker request when the response it was given closes unfinished. A
    // generation's answer must outlive its leader's client, so it gets a response of its own that
    // never closes; the client leaving before the answer is taken over ends it here (clientClosed).
    const proxyTarget = exchange.takeover ? new http.ServerResponse(req) : res;
    try {
      if (body) proxy.web(req, proxyTarget, { buffer: body }, onError);
      else proxy.web(req, proxyTarget, onError);
    } catch (error) {
      this.finishAttempt(attempt); // no request went out: the slot comes back, and the boundary answers
      throw error;
    }
  }

  /**
   * What goes out as the request body when it is not the client's request stream itself: the
   * body the proxy read (from its first byte, for a retry too), or nothing for a retry of a
   * body-less request and for a handshake (whose request stream never ends).
   */
  private bodyFor(exchange: Exchange, attempt: Attempt): Readable | undefined {
    if (exchange.body) return exchange.body.open();
    return attempt.retried || exchange.upgrade ? Readable.from([]) : undefined;
  }

  /**
   * Call when the client side of an exchange has closed (normally, or because our own 408/413
   * ended it): whatever the worker is still doing for it goes too, so its slot comes back.
   */
  clientClosed(exchange: Exchange): void {
    const attempt = (exchange.req as WithAttempt)[ATTEMPT];
    if (!attempt || attempt.takenOver) return;
    if (attempt.proxyRes && !attempt.proxyRes.complete) attempt.proxyRes.destroy();
    if (attempt.finished) return;
    // Still waiting in the agent's queue for a connection: http-proxy-3 drops that request on the
    // client's close, and no 'close' of ours was ever attached to it, so the slot is freed here.
    if (attempt.proxyReq) attempt.proxyReq.destroy();
    else this.finishAttempt(attempt);
  }

  /** 504 or a cut response for attempts past their deadlines (the proxy's scheduler runs this). */
  expireDeadlines(now: number): void {
    this.awaitingHeaders.expire(now, (attempt) => this.contain(attempt.exchange, () => this.timeout(attempt)));
    for (const list of this.producing.values()) {
      list.expire(now, ({ attempt }) => this.contain(attempt.exchange, () => this.overran(attempt)));
    }
  }

  /** The worker is past its lane's response timeout: 504 before its headers, a cut response after. */
  private overran(attempt: Attempt): void {
    attempt.producing = undefined;
    if (attempt.finished) return;
    if (!attempt.responded) return this.timeout(attempt);
    const { exchange } = attempt;
    this.log.warn({ worker: attempt.slot.upstream.name, url: exchange.req.url, client: exchange.clientIp, lane: exchange.lane }, "worker passed the lane's response timeout: response cut");
    exchange.error = 'lane response timeout';
    attempt.failed = true;
    attempt.proxyRes?.destroy();
    attempt.proxyReq?.destroy();
    this.finishAttempt(attempt);
    exchange.res.destroy();
  }

  private onProxyReq(proxyReq: http.ClientRequest, attempt: Attempt): void {
    attempt.proxyReq = proxyReq;
    attempt.reusedConnection = proxyReq.reusedSocket || (proxyReq.socket?.bytesRead ?? 0) > 0;
    proxyReq.on('close', () => this.finishAttempt(attempt));
    if (attempt.exchange.res.destroyed || attempt.exchange.res.writableFinished) {
      proxyReq.destroy();
      return;
    }
    if (attempt.exchange.streamChunked && !attempt.retried) keepChunked(proxyReq);
    if (attempt.exchange.upgrade) {
      proxyReq.on('upgrade', (proxyRes: http.IncomingMessage, workerSocket: Socket, workerHead: Buffer) =>
        this.contain(attempt.exchange, () => this.openTunnel(attempt, proxyRes, workerSocket, workerHead)),
      );
    }
    const socket = proxyReq.socket as Socket | null;
    if (socket && socket.connecting) {
      attempt.connectTimer = setTimeout(() => {
        const error = Object.assign(new Error('connect timed out'), { code: 'ECONNECT_TIMEOUT' });
        proxyReq.destroy(error);
      }, this.config.upstream.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(attempt.connectTimer));
    }
  }

  private onProxyRes(proxyRes: http.IncomingMessage, attempt: Attempt): void {
    if (attempt.failed) {
      proxyRes.destroy();
      return;
    }
    attempt.responded = true;
    attempt.proxyRes = proxyRes;
    this.awaitingHeaders.remove(attempt);
    const { exchange, slot } = attempt;
    const { res } = exchange;
    exchange.upstreamMs = performance.now() - attempt.sentAt;
    if (res.headersSent || res.destroyed) {
      proxyRes.destroy();
      return;
    }
    // One writeHead with a flat list: nothing on the forwarded path calls setHeader before it
    // (Node replays a list through setHeader when it has, which merges repeated Set-Cookies).
    const headers = clientResponseHeaders(proxyRes.rawHeaders);
    if (exchange.takeover?.take(proxyRes, headers, slot.upstream.name, () => this.produced(attempt))) {
      attempt.takenOver = true;
      return;
    }
    addProxyHeaders(headers, exchange, this.config.debugHeaders ? slot.upstream.name : undefined);
    // Node's parser has already refused what its writer would (control characters, bad names).
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage || undefined, headers);
    this.relay(proxyRes, res, attempt);
  }

  /**
   * Relays the worker's response (response-relay.ts: straight through while the client keeps up,
   * spooled when it falls behind, at the client's pace past the lane's spool share). The worker's
   * part ends when it has produced the whole response: its slot is freed then, even if a slow
   * client is still reading. (A response that is cut or never relayed ends the upstream request,
   * whose close frees the slot.)
   */
  private relay(proxyRes: http.IncomingMessage, res: http.ServerResponse, attempt: Attempt): void {
    const { exchange } = attempt;
    const streaming = this.config.streaming;
    const relay = new ResponseRelay(
      proxyRes,
      res,
      {
        windowBytes: streaming.responseWindowBytes,
        spoolBytes: this.lanes[exchange.lane].spoolBytes,
        store: this.responseSpool,
        client: exchange.client,
        sendTimeoutMs: streaming.sendTimeoutMs,
        minBytesPerSec: streaming.minBytesPerSec,
        rateWindowMs: streaming.rateWindowMs,
      },
      {
        produced: () => this.produced(attempt),
        cut: (reason) => this.log.warn({ worker: attempt.slot.upstream.name, url: exchange.req.url, client: exchange.clientIp, err: reason }, 'response stream cut'),
      },
    );
    relay.start();
  }

  /** The worker has produced its whole response. */
  private produced(attempt: Attempt): void {
    // The worker answered before it took the whole request body: the rest is of no use to it,
    // and its connection could carry nothing else until all of it was sent. Stop sending (as
    // nginx closes such an upstream connection); the client's connection closes after this.
    const proxyReq = attempt.proxyReq;
    if (proxyReq && !proxyReq.writableFinished) {
      attempt.failed = true; // what the destroy causes is ours, not the worker's fault
      proxyReq.destroy();
    }
    this.finishAttempt(attempt);
  }

  private timeout(attempt: Attempt): void {
    if (attempt.responded || attempt.failed) return;
    attempt.failed = true;
    attempt.proxyReq?.destroy();
    this.finishAttempt(attempt);
    this.fail(attempt.exchange, 504, 'worker did not answer in time');
  }

  private onError(attempt: Attempt, error: NodeJS.ErrnoException): void {
    if (attempt.failed) return;
    attempt.failed = true;
    this.awaitingHeaders.remove(attempt);
    clearTimeout(attempt.connectTimer);
    const { exchange, slot } = attempt;
    const upstream = slot.upstream;
    const code = error.code ?? error.message;
    upstream.recordFailure(code);
    const verdict = afterSendFailure({
      code,
      method: exchange.req.method ?? '',
      responded: attempt.responded || exchange.res.headersSent,
      reusedConnection: attempt.reusedConnection,
      replayable: !exchange.res.destroyed && (exchange.body ? exchange.body.complete : !exchange.framing.hasBody),
      sends: exchange.sends,
      workers: exchange.pool.upstreams.length,
      resetRetried: exchange.resetRetried,
    });
    if (verdict.eject) {
      this.log.warn({ worker: upstream.name, err: code }, 'worker failed: ejected until its health check passes');
      exchange.pool.setState(upstream, 'down');
    }
    this.finishAttempt(attempt);
    if (attempt.responded || exchange.res.headersSent) {
      exchange.res.destroy();
      return;
    }
    if (verdict.retry) {
      if (verdict.retry === 'reused-reset') exchange.resetRetried = true;
      this.log.debug({ worker: upstream.name, err: code, url: exchange.req.url, retryOn: verdict.retry }, 'retrying');
      this.acquire(exchange, true);
      return;
    }
    this.fail(exchange, 502, 'worker failed', {}, code);
  }

  private finishAttempt(attempt: Attempt): void {
    if (attempt.finished) return;
    attempt.finished = true;
    this.awaitingHeaders.remove(attempt);
    if (attempt.producing) this.producing.get(attempt.exchange.lane)!.remove(attempt.producing);
    clearTimeout(attempt.connectTimer);
    attempt.slot.release();
  }

  private fail(exchange: Exchange, status: ErrorStatus, reason: string, headers: Record<string, string> = {}, error?: string): void {
    exchange.error = error ?? reason;
    const connection: Record<string, string> = exchange.closeConnection ? { connection: 'close' } : {};
    const cloneCache: Record<string, string> = exchange.cloneCache ? { 'x-switchyard-clone-cache': exchange.cloneCache } : {};
    sendError(exchange.res, status, reason, { 'x-switchyard-lane': exchange.lane, ...connection, ...cloneCache, ...headers });
  }

  /**
   * The worker switched protocols: the client gets the 101, and the two sockets are joined. The
   * handshake held a slot like any request; the tunnel holds none (the proxyReq's close frees it),
   * only its place among the pool's upgraded connections, until either side closes.
   */
  private openTunnel(attempt: Attempt, proxyRes: http.IncomingMessage, workerSocket: Socket, workerHead: Buffer): void {
    const { exchange, slot } = attempt;
    attempt.responded = true;
    this.awaitingHeaders.remove(attempt);
    exchange.upstreamMs = performance.now() - attempt.sentAt;
    const { socket: client, head } = exchange.upgrade!;
    if (client.destroyed || exchange.res.headersSent) return void workerSocket.destroy();
    const extra = ['X-Switchyard-Lane', exchange.lane];
    if (this.config.debugHeaders) extra.push('X-Switchyard-Worker', slot.upstream.name);
    client.write(switchingProtocolsHead(proxyRes, extra));
    if (workerHead.length > 0) client.write(workerHead);
    if (head.length > 0) workerSocket.write(head);
    this.hooks.tunnelOpened(exchange);
    joinSockets(client, workerSocket, this.config.upgrades.idleTimeoutMs);
  }

  close(): void {
    for (const proxy of this.proxies.values()) proxy.close();
  }
}
