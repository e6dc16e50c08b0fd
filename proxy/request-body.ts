import type http from 'node:http';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ProxyConfig } from '../lib/config.ts';
import { RateGuard } from './rate-guard.ts';
import type { SpoolStore } from './spool-store.ts';

type BodiesConfig = ProxyConfig['bodies'];

export interface BodyPolicy {
  /** 413 past this many bytes (0 = no limit) */
  maxBytes: number;
  /** read this much before a worker is taken; a longer body streams on after it */
  bufferBytes: number;
  /** the buffered part must have arrived within this time */
  timeoutMs: number;
}

export interface BodyFailure {
  status: 408 | 413 | 503;
  reason: string;
}

export type BodyStore = SpoolStore<BodiesConfig>;

const TOO_SLOW: BodyFailure = { status: 408, reason: 'request body arrived too slowly' };
const TIMED_OUT: BodyFailure = { status: 408, reason: 'request body did not arrive in time' };
const TOO_LARGE: BodyFailure = { status: 413, reason: 'request body too large' };
const NO_ROOM: BodyFailure = { status: 503, reason: 'no room to buffer the request body' };
const OVER_SHARE: BodyFailure = { status: 503, reason: "your other request bodies take this client's share of the buffer" };

/**
 * One request's body on its way to a worker. start() reads it before the request takes a slot:
 * up to memoryBytes in memory, the rest of the first bufferBytes into a temp file. A body that
 * ends within that is `complete` (sent with a Content-Length, and can be sent again to another
 * worker); a longer one streams on from the client after the buffered part, under the same
 * limits. Every wait is bounded: the body's timeout, and the minimum rate while we wait for it.
 */
export class RequestBody {
  complete = false;
  /** bytes read from the client so far (buffered ones and any streamed since) */
  received = 0;
  private readonly memoryParts: Buffer[] = [];
  private memoryBytes = 0;
  private file: FileHandle | undefined;
  private fileBytes = 0;
  /** the temp-file write in progress (the client is paused meanwhile, so there is at most one) */
  private pendingWrite: Promise<void> | undefined;
  private readonly rate: RateGuard;
  private timer: NodeJS.Timeout | undefined;
  private rateTimer: NodeJS.Timeout | undefined;
  private failed: BodyFailure | undefined;
  private released = false;
  /** called once when reading fails after start() has reported ready (while streaming to a worker) */
  onLateFailure: (failure: BodyFailure) => void = () => {};
  private onReady: ((failure: BodyFailure | undefined) => void) | undefined;

  /** bytes held of the client's share (memory and temp file) */
  private clientBytes = 0;

  constructor(
    private readonly store: BodyStore,
    private readonly req: http.IncomingMessage,
    private readonly policy: BodyPolicy,
    /** whose share the body counts against: the client's fair-share key */
    private readonly client: string,
  ) {
    this.rate = new RateGuard(store.config.minBytesPerSec, store.config.rateWindowMs);
  }

  /** Calls back once: with nothing when the body (or its buffered part) is ready, else with why not. */
  start(onReady: (failure: BodyFailure | undefined) => void): void {
    this.onReady = onReady;
    this.timer = setTimeout(() => this.fail(TIMED_OUT), this.policy.timeoutMs);
    this.rateTimer = setInterval(() => {
      const now = Date.now();
      if (this.rate.tooSlow(now)) this.fail(TOO_SLOW);
      else if (this.rate.waited(now) > this.store.config.streamTimeoutMs) this.fail(TIMED_OUT);
    }, Math.min(1000, Math.max(50, Math.floor(this.store.config.rateWindowMs / 4))));
    if (this.policy.bufferBytes === 0) return this.ready();
    this.rate.startWaiting(Date.now());
    this.req.on('data', this.onData);
    this.req.on('end', this.onEnd);
    this.req.on('error', this.onClientError);
  }

  /** The whole body from its first byte: the buffered part, then (streaming) the rest from the client. */
  open(): Readable {
    const stream = Readable.from(this.chunks(), { objectMode: false });
    // Its failures reach the client through onLateFailure or the request's close; an 'error' with
    // no listener would take the process down.
    stream.on('error', () => {});
    return stream;
  }

  /** Frees the memory and the temp file; the request is over. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.stopTimers();
    this.detach();
    this.store.releaseMemory(this.memoryBytes);
    this.store.releaseForClient(this.client, this.clientBytes);
    this.memoryParts.length = 0;
    if (this.file) {
      this.store.releaseDisk(this.fileBytes);
      void this.file.close().catch(() => {});
      this.file = undefined;
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    this.rate.bytes += chunk.length;
    this.received += chunk.length;
    if (this.policy.maxBytes > 0 && this.received > this.policy.maxBytes) return this.fail(TOO_LARGE);
    if (!this.store.reserveForClient(this.client, chunk.length)) return this.fail(OVER_SHARE);
    this.clientBytes += chunk.length;
    this.keep(chunk, this.received > this.policy.bufferBytes);
  };

  private readonly onEnd = (): void => {
    if (this.failed || this.released) return;
    this.whenStored(() => {
      this.complete = true;
      this.stopTimers();
      this.ready();
    });
  };

  private readonly onClientError = (): void => {
    // The client went away: the request's close handling releases everything.
    this.stopTimers();
  };

  /** Keeps a chunk in memory while the budgets allow, else appends it to the temp file. */
  private keep(chunk: Buffer, lastBufferedChunk: boolean): void {
    const inMemory =
      this.file === undefined &&
      this.memoryBytes + chunk.length <= this.store.config.memoryBytes &&
      this.store.reserveMemory(chunk.length);
    if (inMemory) {
      this.memoryParts.push(chunk);
      this.memoryBytes += chunk.length;
    } else {
      this.req.pause();
      this.rate.stopWaiting(Date.now());
      this.pendingWrite = this.append(chunk).then(
        () => {
          this.pendingWrite = undefined;
          if (this.failed || this.released || lastBufferedChunk) return;
          this.rate.startWaiting(Date.now());
          this.req.resume();
        },
        () => this.fail(NO_ROOM),
      );
    }
    if (lastBufferedChunk) {
      // The buffered part is full: the rest streams on once a worker takes the request.
      this.detach();
      this.req.pause();
      this.rate.stopWaiting(Date.now());
      this.whenStored(() => this.ready());
    }
  }

  /** Appends a chunk to the temp file; its disk reservation is kept only if it is written and the body is still wanted. */
  private async append(chunk: Buffer): Promise<void> {
    if (!this.store.reserveDisk(chunk.length)) throw new Error('spool budget spent');
    let kept = false;
    try {
      if (!this.file) {
        const file = await this.store.openTempFile();
        if (this.released) return void (await file.close());
        this.file = file;
      }
      const { bytesWritten } = await this.file.write(chunk, 0, chunk.length, this.fileBytes);
      if (bytesWritten !== chunk.length) throw new Error('short write to the spool file');
      if (!this.released) {
        this.fileBytes += chunk.length;
        kept = true;
      }
    } finally {
      if (!kept) this.store.releaseDisk(chunk.length);
    }
  }

  private whenStored(then: () => void): void {
    if (!this.pendingWrite) return then();
    void this.pendingWrite.then(() => {
      if (!this.failed && !this.released) then();
    });
  }

  private async *chunks(): AsyncGenerator<Buffer> {
    for (const part of this.memoryParts) yield part;
    if (this.file && this.fileBytes > 0) {
      yield* this.file.createReadStream({ start: 0, end: this.fileBytes - 1, autoClose: false });
    }
    if (this.complete) return;
    // Streaming the rest: time spent waiting here is time spent waiting for the client.
    const rest = this.req[Symbol.asyncIterator]();
    for (;;) {
      this.rate.startWaiting(Date.now());
      const next = await rest.next();
      this.rate.stopWaiting(Date.now());
      if (next.done) break;
      const chunk = next.value as Buffer;
      this.rate.bytes += chunk.length;
      this.received += chunk.length;
      if (this.policy.maxBytes > 0 && this.received > this.policy.maxBytes) {
        this.fail(TOO_LARGE);
        // an error, not an end: the worker must never see a cut body as a complete one
        throw new Error(TOO_LARGE.reason);
      }
      yield chunk;
    }
    this.stopTimers();
  }

  private ready(): void {
    clearTimeout(this.timer); // from here only time spent waiting on the client counts (the rate timer)
    const onReady = this.onReady;
    this.onReady = undefined;
    onReady?.(undefined);
  }

  private fail(failure: BodyFailure): void {
    if (this.failed || this.released) return;
    this.failed = failure;
    this.stopTimers();
    this.detach();
    const onReady = this.onReady;
    this.onReady = undefined;
    if (onReady) onReady(failure);
    else this.onLateFailure(failure);
  }

  private detach(): void {
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
  }

  private stopTimers(): void {
    clearTimeout(this.timer);
    clearInterval(this.rateTimer);
  }
}
