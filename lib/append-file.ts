import type { SonicBoom as SonicBoomStream } from 'sonic-boom';
import type { Logger } from './log.ts';
import { SonicBoom } from './stdout-sink.ts';
import { ThrottledLog } from './throttled-log.ts';

const MAX_WRITE_BYTES = 256 * 1024;
/** a write that failed while the file is being closed is tried again this much later */
const RETRY_WRITE_MS = 100;

export interface AppendFileOptions {
  path: string;
  /** what the file is, for log lines ("access log") */
  label: string;
  /** bytes waiting for a slow or failing disk; lines past it are dropped and counted */
  maxBufferBytes: number;
  /** after a failed open, a write this long later tries again (besides reopen()) */
  retryOpenMs: number;
  /** lines are handed to the disk in batches of about this many characters... */
  batchChars: number;
  /** ...or this long after the first line of a batch, whichever comes first */
  flushMs: number;
  /** how long the file being left by reopen() may take to write out what it holds before it is closed anyway */
  retireMs: number;
}

/**
 * A file that lines are appended to, for a process that must never wait on it or die of it.
 * Writes are asynchronous (sonic-boom, O_APPEND, so a copytruncate rotation leaves no hole of
 * zeros: the next write lands at the new end), in batches (batchChars, or flushMs after a
 * batch's first line, as nginx's `buffer=` and `flush=`): a write per line cost the proxy more
 * than everything else the access log does. Memory is bounded: past maxBufferBytes waiting for
 * the disk, lines are dropped and counted (a batch's lines together), not queued.
 * A failed open (no permission, a path that cannot be made) or a failed write (full disk) gives a
 * throttled log line; lines are dropped until an open succeeds, and a failed write is retried with
 * the next line. reopen() opens the path afresh for log rotation and switches over only once the
 * new file is open, so a failed reopen keeps the old file.
 */
export class AppendFile {
  /** the stream lines go to (undefined: the file could not be opened) */
  private current: SonicBoomStream | undefined;
  /** a reopen waiting for its file to open */
  private next: SonicBoomStream | undefined;
  private failedOpenAt = Number.NEGATIVE_INFINITY;
  private closed = false;
  private readonly failures: ThrottledLog;
  private readonly drops: ThrottledLog;
  /** lines not yet handed to the stream */
  private batch = '';
  private batchLines = 0;
  private batchTimer: NodeJS.Timeout | undefined;
  /** lines in the batch being handed over (a drop during the hand-over drops them all) */
  private handing = 0;
  /** lines dropped: past the buffer bound, or while no file was open */
  dropped = 0;

  constructor(
    private readonly options: AppendFileOptions,
    log: Logger,
  ) {
    this.failures = new ThrottledLog(log);
    this.drops = new ThrottledLog(log);
  }

  get path(): string {
    return this.options.path;
  }

  /** Opens the file, creating its directory; lines written meanwhile wait in the buffer. */
  open(): void {
    if (this.current || this.next || this.closed) return;
    this.current = this.openStream();
  }

  write(line: string): void {
    if (!this.current) {
      this.countDrop(1);
      if (!this.next && !this.closed && Date.now() - this.failedOpenAt >= this.options.retryOpenMs) this.reopen();
      return;
    }
    this.batch += line;
    this.batchLines++;
    if (this.batch.length >= this.options.batchChars) this.writeBatch();
    else if (!this.batchTimer) this.batchTimer = setTimeout(this.writeBatch, this.options.flushMs).unref();
  }

  private readonly writeBatch = (): void => {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const { batch, batchLines } = this;
    if (batchLines === 0) return;
    this.batch = '';
    this.batchLines = 0;
    if (!this.current) return this.countDrop(batchLines);
    this.handing = batchLines;
    (this.current as unknown as { write(data: Buffer): boolean }).write(Buffer.from(batch));
    this.handing = 0;
  };

  /** Opens the path again (after a rotation moved the file away); the old file is written out and closed once the new one is open. */
  reopen(): void {
    if (this.closed || this.next) return;
    if (!this.current) return this.open();
    this.next = this.openStream();
  }

  /** Writes out what is buffered and closes, waiting at most `deadlineMs`; never throws. */
  async close(deadlineMs: number): Promise<void> {
    this.writeBatch();
    this.closed = true;
    this.next?.destroy();
    this.next = undefined;
    const stream = this.current;
    this.current = undefined;
    if (stream) await this.retire(stream, deadlineMs);
  }

  private openStream(): SonicBoomStream {
    // Buffers, not strings: for a string sonic-boom measures the chunk it appends to on every write.
    // maxWrite: its 16 KiB default suits pipes; a file takes more at once.
    const stream = new SonicBoom({ dest: this.options.path, sync: false, mkdir: true, append: true, maxLength: this.options.maxBufferBytes, maxWrite: MAX_WRITE_BYTES, contentMode: 'buffer' });
    stream.on('drop', () => this.countDrop(this.handing));
    // Each stream opens once (a reopen is a new stream), so an error before it has a descriptor is its open failing.
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if ((stream as unknown as { fd: number }).fd === -1) this.openFailed(stream, error);
      else this.failures.write({ path: this.options.path, err: error.code ?? error.message, dropped: this.dropped }, `${this.options.label}: write failed (retried with the next line)`);
    });
    stream.once('ready', () => this.opened(stream));
    return stream;
  }

  private opened(stream: SonicBoomStream): void {
    if (stream !== this.next) return;
    this.writeBatch(); // what came before the switch goes to the old file, in order
    const old = this.current;
    this.current = stream;
    this.next = undefined;
    if (old) void this.retire(old, this.options.retireMs);
  }

  private openFailed(stream: SonicBoomStream, error: NodeJS.ErrnoException): void {
    const fields = { path: this.options.path, err: error.code ?? error.message };
    if (stream === this.next) {
      this.next = undefined;
      this.failures.write(fields, `${this.options.label}: cannot reopen the file; still writing to the one open before`);
      return;
    }
    if (stream !== this.current) return;
    this.current = undefined;
    this.failedOpenAt = Date.now();
    this.failures.write(fields, `${this.options.label}: cannot open the file; lines are dropped until it opens (tried again every ${this.options.retryOpenMs / 1000} s and on reopen)`);
  }

  /** Ends a stream: what it holds is written, then it closes; past the deadline it is closed as it is. */
  private retire(stream: SonicBoomStream, deadlineMs: number): Promise<void> {
    return new Promise((resolve) => {
      // A write that fails while the stream ends stalls the ending (sonic-boom goes on only with a
      // next write): try again a little later, until the deadline.
      let retry: NodeJS.Timeout | undefined;
      const onError = () => {
        clearTimeout(retry);
        retry = setTimeout(() => {
          try {
            stream.flush();
          } catch {
            // destroyed meanwhile
          }
        }, RETRY_WRITE_MS);
      };
      stream.on('error', onError);
      const done = () => {
        clearTimeout(timer);
        clearTimeout(retry);
        stream.off('error', onError);
        resolve();
      };
      const timer = setTimeout(() => {
        stream.destroy();
        done();
      }, deadlineMs);
      stream.once('close', done);
      try {
        stream.end();
      } catch {
        done(); // already destroyed
      }
    });
  }

  private countDrop(lines: number): void {
    this.dropped += lines;
    this.drops.write({ path: this.options.path, dropped: this.dropped }, `${this.options.label}: lines dropped (the file is not open, or the disk is slower than the requests)`);
  }
}
