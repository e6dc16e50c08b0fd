import type http from 'node:http';
import type { FileHandle } from 'node:fs/promises';
import { ClientPace } from './client-pace.ts';
import type { SpoolStore } from './spool-store.ts';

export interface RelayOptions {
  /** response bytes held in the client socket's buffer before the proxy waits on the client */
  windowBytes: number;
  /** of this response, bytes that may wait in a temp file (the lane's spoolBytes; 0 = none) */
  spoolBytes: number;
  store: SpoolStore;
  /** fair-share key: whose part of the spool budget this counts against */
  client: string;
  sendTimeoutMs: number;
  minBytesPerSec: number;
  rateWindowMs: number;
}

export interface RelayHooks {
  /** the worker has produced the whole response: free its slot */
  produced(): void;
  /** the response is being cut (the client is closed): say why, for the log */
  cut(reason: string): void;
}

/** bytes read from a spool file per read (and at most this much more than the window in a client's buffer) */
const READ_BYTES = 64 * 1024;
/** chunks waiting for the temp file: past this the worker is paused until they are written */
const PENDING_WRITE_BYTES = 256 * 1024;

/**
 * Copies a worker's response to its client so that a slow client never holds the worker:
 * - while the client keeps up, chunks go straight to its socket (no added latency), holding at
 *   most the window in the socket's buffer;
 * - when the client falls behind, the rest goes to an unlinked temp file (up to the lane's
 *   spoolBytes and the store's budgets) and is sent from there as the client reads, so the worker
 *   finishes at its own speed;
 * - past that, the worker is paused and the response streams at the client's pace (a clone).
 * Every wait on the client is bounded: no progress for sendTimeoutMs, or (while its worker waits)
 * less than minBytesPerSec, and the client is cut, which frees the worker.
 */
export class ResponseRelay {
  private spooling = false;
  private file: FileHandle | undefined;
  private opening: Promise<void> | undefined;
  /** chunks accepted for the temp file and not written yet, in order */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private writing = false;
  /** the temp file could not be used: what is pending goes to the client from memory */
  private diskFailed = false;
  private writeOffset = 0;
  private readOffset = 0;
  private reading = false;
  /** the file read or write in flight, if any */
  private fileOp: Promise<unknown> | undefined;
  /** bytes reserved in the store for this response (released when its spool closes) */
  private reserved = 0;
  /** the worker is paused until the client drains what waits for it */
  private heldForClient = false;
  private workerEnded = false;
  private done = false;
  /** the client's progress while the relay waits on it; its rate is measured while the worker is held */
  private readonly pace: ClientPace;

  constructor(
    private readonly proxyRes: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly options: RelayOptions,
    private readonly hooks: RelayHooks,
  ) {
    this.pace = new ClientPace(res, options, { stillWaiting: () => this.spooling, tooSlow: (reason) => this.cut(reason) });
  }

  start(): void {
    const { proxyRes, res } = this;
    // `on`, not `once`, for events a response emits at most once: `once` allocates a wrapper and a
    // bound function per call, on every request (and a second 'error' would find no listener).
    proxyRes.on('error', (error: Error) => this.cut(error.message));
    proxyRes.on('aborted', () => this.cut('aborted'));
    proxyRes.on('data', (chunk: Buffer) => this.onData(chunk));
    proxyRes.on('end', () => this.onWorkerEnd());
    res.on('drain', () => this.onDrain());
    res.on('close', () => this.close());
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    if (this.spooling) return this.spool(chunk);
    this.res.write(chunk);
    if (this.res.writableLength < this.options.windowBytes) return;
    if (this.mayStartSpooling()) this.spooling = true;
    else this.holdWorkerForClient();
    this.waitOnClient();
  }

  private onWorkerEnd(): void {
    if (this.done) return;
    this.workerEnded = true;
    this.hooks.produced();
    this.pace.stopMeasuring();
    this.heldForClient = false;
    this.finishIfDrained();
  }

  /** The client took what was in its buffer: send from the spool, or let the worker go on. */
  private onDrain(): void {
    if (this.done) return;
    if (this.spooling) return this.pump();
    this.releaseWorker();
    this.finishIfDrained();
  }

  private mayStartSpooling(): boolean {
    return this.options.spoolBytes > 0 && !this.diskFailed;
  }

  private spool(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const store = this.options.store;
    const roomLeft =
      this.reserved + chunk.length <= this.options.spoolBytes &&
      store.reserveDisk(chunk.length) &&
      (store.reserveForClient(this.options.client, chunk.length) || (store.releaseDisk(chunk.length), false));
    if (roomLeft) this.reserved += chunk.length;
    // Past the spool's share, or with too much still to write: the worker waits (the chunk that
    // passed the share is kept, so a share is passed by at most one chunk).
    if (!roomLeft) this.holdWorkerForClient();
    else if (this.pendingBytes > PENDING_WRITE_BYTES) this.proxyRes.pause();
    this.flush();
    this.pump();
  }

  private flush(): void {
    if (this.writing || this.diskFailed || this.pending.length === 0 || this.done) return;
    if (!this.file) {
      this.opening ??= this.options.store.openTempFile().then(
        (file) => {
          if (this.done) return void file.close().catch(() => {});
          this.file = file;
          this.flush();
        },
        () => this.onDiskFailure(),
      );
      return;
    }
    // the chunks being written leave `pending` (more arrive meanwhile); a failed write puts them back in front
    const parts = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = true;
    const putBack = () => {
      this.pending = parts.concat(this.pending);
      this.pendingBytes += bytes;
    };
    this.fileOp = this.file.writev(parts, this.writeOffset).then(
      ({ bytesWritten }) => {
        this.writing = false;
        if (this.done) return;
        if (bytesWritten !== bytes) {
          putBack();
          return this.onDiskFailure();
        }
        this.writeOffset += bytes;
        if (!this.heldForClient && this.pendingBytes <= PENDING_WRITE_BYTES) this.proxyRes.resume();
        this.flush();
        this.pump();
      },
      () => {
        this.writing = false;
        if (this.done) return;
        putBack();
        this.onDiskFailure();
      },
    );
  }

  /** A full or failing disk: nothing is lost; what is pending goes from memory and the worker streams at the client's pace. */
  private onDiskFailure(): void {
    if (this.done) return;
    this.diskFailed = true;
    this.holdWorkerForClient();
    this.pump();
  }

  /** Sends spooled bytes while the client's buffer has room: the file first, then what never reached it. */
  private pump(): void {
    if (this.reading || this.done) return;
    const { res } = this;
    while (res.writableLength < this.options.windowBytes) {
      if (this.readOffset < this.writeOffset) return this.readFromFile();
      if (this.diskFailed && this.pending.length > 0) {
        const chunk = this.pending.shift()!;
        this.pendingBytes -= chunk.length;
        res.write(chunk);
        continue;
      }
      if (this.pending.length === 0 && !this.writing) this.spoolDrained();
      return;
    }
    this.waitOnClient();
  }

  private readFromFile(): void {
    const file = this.file!;
    const length = Math.min(READ_BYTES, this.writeOffset - this.readOffset);
    this.reading = true;
    this.fileOp = file.read(Buffer.allocUnsafe(length), 0, length, this.readOffset).then(
      ({ bytesRead, buffer }) => {
        this.reading = false;
        if (this.done) return;
        if (bytesRead === 0) return this.cut('spool file read nothing');
        this.readOffset += bytesRead;
        this.res.write(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
        this.pump();
      },
      (error: Error) => {
        this.reading = false;
        this.cut(`spool file read failed: ${error.message}`);
      },
    );
  }

  /** Everything spooled has gone to the client's buffer: back to writing straight through. */
  private spoolDrained(): void {
    this.spooling = false;
    this.closeSpool();
    if (this.res.writableLength >= this.options.windowBytes) return this.waitOnClient();
    this.releaseWorker();
    this.finishIfDrained();
  }

  private holdWorkerForClient(): void {
    if (this.workerEnded) return;
    this.pace.startMeasuring();
    this.heldForClient = true;
    this.proxyRes.pause();
  }

  private releaseWorker(): void {
    this.heldForClient = false;
    this.pace.stopMeasuring();
    if (!this.workerEnded && this.pendingBytes <= PENDING_WRITE_BYTES) this.proxyRes.resume();
  }

  private finishIfDrained(): void {
    if (!this.workerEnded || this.spooling || this.done) return;
    this.res.end();
    if (this.res.writableFinished) this.close();
    else this.waitOnClient();
  }

  /** Something waits for the client: send timeout and minimum rate (client-pace.ts). */
  private waitOnClient(): void {
    if (!this.done) this.pace.watch();
  }

  private cut(reason: string): void {
    if (this.done || this.res.writableFinished) return this.close();
    this.hooks.cut(reason);
    this.close();
    this.res.destroy();
  }

  private closeSpool(): void {
    const store = this.options.store;
    store.releaseDisk(this.reserved);
    store.releaseForClient(this.options.client, this.reserved);
    this.reserved = 0;
    const file = this.file;
    this.file = undefined;
    this.opening = undefined;
    this.writeOffset = 0;
    this.readOffset = 0;
    // a read or write still in flight uses the handle: it is closed once that settles
    if (file) void (this.fileOp ?? Promise.resolve()).finally(() => file.close().catch(() => {}));
  }

  /** Ends the relay's part: timers stopped, spool released. Idempotent. */
  private close(): void {
    if (this.done) return;
    this.done = true;
    this.pace.stop();
    this.pending = [];
    this.pendingBytes = 0;
    this.closeSpool();
  }
}
