import type http from 'node:http';
import type { RequestClass } from '../../lib/config.ts';
import type { Logger } from '../../lib/log.ts';
import type { Exchange } from '../exchange.ts';
import type { ProxyStats } from '../stats.ts';

// read once: performance.timeOrigin is a getter that calls into the runtime
const TIME_ORIGIN = performance.timeOrigin;

/**
 * Stage "record": what every request leaves behind, however it was answered: its stats and, when
 * it failed or at debug level, a log line. The status is 499 (nginx's "client closed request")
 * when the client left before the response was complete.
 */
export class RequestRecorder {
  constructor(
    private readonly stats: ProxyStats,
    private readonly log: Logger,
  ) {}

  /** A request answered in no time, before it was classified (refused at its connection's turn). */
  refused(requestClass: RequestClass, status: number): void {
    this.stats.record(requestClass, status, 0, TIME_ORIGIN + performance.now());
  }

  ended(requestClass: RequestClass, req: http.IncomingMessage, status: number, startedAt: number, clientIp: string, exchange: Exchange | undefined): void {
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
