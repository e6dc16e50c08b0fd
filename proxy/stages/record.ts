import type http from 'node:http';
import type { RequestClass } from '../../lib/config.ts';
import type { Logger } from '../../lib/log.ts';
import type { AccessLog } from '../access-log.ts';
import type { AccessEntry } from '../access-log-format.ts';
import type { Exchange } from '../exchange.ts';
import type { ProxyStats } from '../stats.ts';

// read once: performance.timeOrigin is a getter that calls into the runtime
const TIME_ORIGIN = performance.timeOrigin;

/** The response head Node wrote (a latin1 string: one character per byte), or null before it did. */
type WithHead = http.ServerResponse & { _header?: string | null };

/**
 * Stage "record": what every request leaves behind, however it was answered: its stats, its
 * access log line and, when it failed or at debug level, a log line. The status is 499 (nginx's
 * "client closed request") when the client left before the response was complete.
 */
export class RequestRecorder {
  constructor(
    private readonly stats: ProxyStats,
    private readonly log: Logger,
    private readonly accessLog: AccessLog | undefined,
  ) {}

  /**
   * What the request's socket has sent so far, taken as its answer begins. A connection's answers
   * go out one at a time (the turn stage), so what it sends from here to the end of this one is
   * this response: its head and its body. (0 without an access log: nothing needs it.)
   */
  sentSoFar(req: http.IncomingMessage): number {
    return this.accessLog ? (req.socket.bytesWritten ?? 0) : 0;
  }

  /** A request refused before its turn on its connection (too many pipelined), in no time. */
  refused(requestClass: RequestClass, req: http.IncomingMessage, res: http.ServerResponse, status: number, clientIp: string): void {
    this.stats.record(requestClass, status, 0, TIME_ORIGIN + performance.now());
    // its answer waits behind the ones before it, so the socket cannot tell its size: its Content-Length does
    this.accessLog?.record(accessEntry(req, status, Number(res.getHeader('content-length') ?? 0), clientIp, requestClass, undefined, 0));
  }

  /** A request answered before it was classified and counted (malformed, /healthz, an internal path): its access log line. */
  answeredEarly(req: http.IncomingMessage, res: http.ServerResponse, status: number, startedAt: number, sentBefore: number, clientIp: () => string): void {
    if (!this.accessLog) return;
    this.accessLog.record(accessEntry(req, status, bodyBytesSent(req, res, sentBefore), clientIp(), undefined, undefined, performance.now() - startedAt));
  }

  /** `res` undefined: the answer had no body (a WebSocket's 101, after which the connection is a tunnel). */
  ended(
    requestClass: RequestClass,
    req: http.IncomingMessage,
    res: http.ServerResponse | undefined,
    status: number,
    startedAt: number,
    sentBefore: number,
    clientIp: string,
    exchange: Exchange | undefined,
  ): void {
    const endedAt = performance.now();
    const ms = endedAt - startedAt;
    this.stats.record(requestClass, status, ms / 1000, TIME_ORIGIN + endedAt);
    if (this.accessLog) {
      const bytes = res ? bodyBytesSent(req, res, sentBefore) : 0;
      this.accessLog.record(accessEntry(req, status, bytes, clientIp, requestClass, exchange, ms));
    }
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

/** nginx's $body_bytes_sent: what the socket sent for this response, less its head. */
function bodyBytesSent(req: http.IncomingMessage, res: http.ServerResponse, sentBefore: number): number {
  const head = (res as WithHead)._header?.length ?? 0;
  return Math.max(0, (req.socket.bytesWritten ?? 0) - sentBefore - head);
}

function accessEntry(
  req: http.IncomingMessage,
  status: number,
  bytes: number,
  client: string,
  lane: RequestClass | undefined,
  exchange: Exchange | undefined,
  totalMs: number,
): AccessEntry {
  const headers = exchange?.clientHeaders ?? req.headers;
  return {
    client,
    method: req.method ?? '-',
    url: req.url ?? '-',
    httpVersion: req.httpVersion,
    status,
    bytes,
    referer: headers.referer,
    userAgent: headers['user-agent'],
    lane,
    worker: exchange?.worker,
    queueMs: exchange?.queueMs,
    upstreamMs: exchange?.upstreamMs,
    totalMs,
    retried: exchange?.retried ?? false,
    cloneCache: exchange?.cloneCache,
  };
}
