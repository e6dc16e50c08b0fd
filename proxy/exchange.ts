import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Lane } from '../lib/config.ts';
import type { Balancer } from './balancer.ts';
import type { CloneCacheResult } from './clone-sharing/clone-cache-counts.ts';
import type { Pool } from './pool.ts';
import type { RequestBody } from './request-body.ts';

/** How the client framed its request body, read once while the headers are still the client's. */
export interface ClientFraming {
  hasBody: boolean;
  /** Transfer-Encoding (chunked) rather than Content-Length */
  chunked: boolean;
  /** Content-Length as a number (0 when absent; NaN when not a number, which Node's parser refuses first) */
  declaredLength: number;
}

export function clientFraming(headers: http.IncomingHttpHeaders): ClientFraming {
  const length = headers['content-length'];
  const chunked = headers['transfer-encoding'] !== undefined;
  return { hasBody: chunked || (length !== undefined && length !== '0'), chunked, declaredLength: Number(length ?? 0) };
}

/** Takes a worker's answer over instead of relaying it to the one client (a clone sharing generation's leader). */
export interface ResponseTakeover {
  /**
   * The worker's answer, its headers for the client (hop-by-hop ones removed): true when it is
   * taken over (the forwarder then frees the slot on `produced`, whatever the client does), false
   * to relay it as usual.
   */
  take(proxyRes: http.IncomingMessage, headers: string[], worker: string, produced: () => void): boolean;
}

/** Where a lane's requests go: its pool, how a worker is picked, and its place in the pool's queue. */
export interface Route {
  lane: Lane;
  pool: Pool;
  balancer: Balancer;
  priority: number;
}

/**
 * One client request on its way through the proxy, from routing to its end. Built only by
 * createExchange, with every field set (the ones filled in later start as undefined), so that all
 * exchanges share one V8 shape.
 */
export interface Exchange extends Route {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** the request's headers as the client sent them (req.headers becomes what the worker gets) */
  clientHeaders: http.IncomingHttpHeaders;
  clientIp: string;
  /** who the request counts against in its pool's fair share (fair-share-key.ts) */
  client: string;
  /** the client connection closes after this response (keep-alive policy or shutdown) */
  closeConnection: boolean;
  framing: ClientFraming;
  /** the body goes to the worker chunked, as the client is still sending it (set by the body stage) */
  streamChunked: boolean;
  startedAt: number;
  /** the body as the proxy read it (undefined: the request has none) */
  body: RequestBody | undefined;
  /** a WebSocket handshake: the client's socket and the bytes it sent after its request */
  upgrade: { socket: Socket; head: Buffer } | undefined;
  /** the handshake succeeded: the exchange is a tunnel now */
  tunnelled: boolean;
  /** filled in by the forwarder, read when the exchange ends (logs and stats) */
  worker: string | undefined;
  retried: boolean;
  /** ms spent waiting in the pool's queue for a slot, every attempt together */
  queueMs: number;
  /** ms from the latest send to the worker's response headers (undefined: no worker answered) */
  upstreamMs: number | undefined;
  /** sends so far: a refused connect may be retried on each other worker, a reused-socket reset once */
  sends: number;
  resetRetried: boolean;
  error: string | undefined;
  /** clone sharing: how the answer was found, for X-Switchyard-Clone-Cache (undefined: not a clone-protocol request) */
  cloneCache: CloneCacheResult | undefined;
  /** clone sharing: set when this exchange leads a generation, which takes a shareable answer over */
  takeover: ResponseTakeover | undefined;
}

export interface ExchangeStart {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  route: Route;
  clientIp: string;
  client: string;
  closeConnection: boolean;
  framing: ClientFraming;
  startedAt: number;
  upgrade: Exchange['upgrade'];
}

export function createExchange(start: ExchangeStart): Exchange {
  return {
    req: start.req,
    res: start.res,
    clientHeaders: start.req.headers,
    lane: start.route.lane,
    pool: start.route.pool,
    balancer: start.route.balancer,
    priority: start.route.priority,
    clientIp: start.clientIp,
    client: start.client,
    closeConnection: start.closeConnection,
    framing: start.framing,
    streamChunked: start.framing.chunked,
    startedAt: start.startedAt,
    body: undefined,
    upgrade: start.upgrade,
    tunnelled: false,
    worker: undefined,
    retried: false,
    queueMs: 0,
    upstreamMs: undefined,
    sends: 0,
    resetRetried: false,
    error: undefined,
    cloneCache: undefined,
    takeover: undefined,
  };
}

/**
 * Appends the headers the proxy adds to a worker's answer for this exchange's client: its lane,
 * the worker (debug headers), Connection: close when the connection ends after it (an answer
 * that comes before the whole request body has too: the rest cannot be told from a next
 * request), and the clone cache result.
 */
export function addProxyHeaders(headers: string[], exchange: Exchange, worker: string | undefined): string[] {
  headers.push('x-switchyard-lane', exchange.lane);
  if (worker !== undefined) headers.push('x-switchyard-worker', worker);
  if (exchange.closeConnection || !exchange.req.complete) headers.push('connection', 'close');
  if (exchange.cloneCache !== undefined) headers.push('x-switchyard-clone-cache', exchange.cloneCache);
  return headers;
}
