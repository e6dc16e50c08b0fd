import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Lane } from '../lib/config.ts';
import type { Balancer } from './balancer.ts';
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
  };
}
