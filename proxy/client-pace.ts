import type http from 'node:http';
import type { Socket } from 'node:net';
import { RateGuard } from './rate-guard.ts';

/** How slow a client reading a response may be (proxy.streaming). */
export interface PaceLimits {
  sendTimeoutMs: number;
  minBytesPerSec: number;
  rateWindowMs: number;
}

export interface PaceHooks {
  /** besides the socket's own buffer and a measured wait: is something still waiting on this client? */
  stillWaiting(): boolean;
  /** the client is too slow: cut it */
  tooSlow(reason: string): void;
}

/**
 * Bytes the kernel has taken from a socket: handed to libuv, less what libuv still queues. Node's
 * own counts move only once a whole write is done (a worker's 64 KiB chunk to a slow reader can
 * take seconds), libuv's queue shrinks with every part the kernel accepts. (Node internals, read
 * only; with neither there, progress is seen per whole write.)
 */
export function bytesTaken(socket: Socket | null): number {
  if (!socket) return 0;
  const internals = socket as Socket & { _bytesDispatched?: number; _handle?: { writeQueueSize?: number } };
  return (internals._bytesDispatched ?? socket.bytesWritten) - (internals._handle?.writeQueueSize ?? 0);
}

/**
 * Watches a client we wait on while it reads a response: it is too slow when it takes nothing
 * for sendTimeoutMs (nginx's send_timeout), or, while a wait is measured (startMeasuring: a
 * worker held for it, bytes ready for it), reads slower than minBytesPerSec over rateWindowMs of
 * that waiting. One timer, armed only while something waits for the client.
 */
export class ClientPace {
  private timer: NodeJS.Timeout | undefined;
  private lastTaken = 0;
  private lastProgressAt = 0;
  /** made when a wait is first measured (most responses never have one) */
  private rate: RateGuard | undefined;
  private measuring = false;

  constructor(
    private readonly res: http.ServerResponse,
    private readonly limits: PaceLimits,
    private readonly hooks: PaceHooks,
  ) {}

  /** Something waits for the client: watch its progress (no-op while already watching). */
  watch(): void {
    if (this.timer) return;
    this.lastTaken = bytesTaken(this.res.socket);
    this.lastProgressAt = Date.now();
    const { sendTimeoutMs, rateWindowMs } = this.limits;
    const tick = Math.max(20, Math.min(1000, Math.floor(Math.min(sendTimeoutMs, rateWindowMs) / 4)));
    this.timer = setInterval(() => this.check(), tick);
  }

  /** From now the client's reading rate counts against the minimum. */
  startMeasuring(now = Date.now()): void {
    if (this.measuring) return;
    this.rate ??= new RateGuard(this.limits.minBytesPerSec, this.limits.rateWindowMs);
    this.rate.startWaiting(now);
    this.measuring = true;
  }

  stopMeasuring(now = Date.now()): void {
    if (!this.measuring) return;
    this.rate!.stopWaiting(now);
    this.measuring = false;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const { res } = this;
    if (res.destroyed) return this.stop();
    const now = Date.now();
    const taken = bytesTaken(res.socket);
    if (taken > this.lastTaken) {
      if (this.measuring) this.rate!.bytes += taken - this.lastTaken;
      this.lastTaken = taken;
      this.lastProgressAt = now;
    }
    if (res.writableLength === 0 && !this.measuring && !this.hooks.stillWaiting()) return this.stop();
    if (now - this.lastProgressAt >= this.limits.sendTimeoutMs) return this.hooks.tooSlow('client took nothing within the send timeout');
    if (this.measuring && this.rate!.tooSlow(now)) this.hooks.tooSlow('client read slower than the minimum rate while it was waited on');
  }
}
