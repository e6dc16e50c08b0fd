import sonicBoom, { type SonicBoom as SonicBoomStream, type SonicBoomOpts } from 'sonic-boom';

// CommonJS (module.exports = SonicBoom), while its types describe an ES module with a default export
export const SonicBoom = sonicBoom as unknown as new (options: SonicBoomOpts) => SonicBoomStream;

export interface StdoutSinkOptions {
  /** default 1 (stdout) */
  fd?: number;
  /** bytes held while the reader is slow; lines beyond it are dropped and counted */
  maxBufferBytes?: number;
  /** how long the flush at exit may wait for a reader that does not drain */
  exitFlushMs?: number;
}

/**
 * Where a process's log lines go: asynchronous writes to stdout (sonic-boom 5) that cannot wedge
 * the process. pino's own destination retries a failed write in its exit flush forever, EPIPE
 * included, so a process whose stdout reader was gone (PM2 killed) looped at exit holding its
 * port. Here the first failed write means the reader is gone: every later line is dropped. A
 * reader that stops draining costs at most maxBufferBytes, and the exit flush gives up after
 * exitFlushMs.
 */
export class StdoutSink {
  private readonly stream: SonicBoomStream;
  private readonly exitFlushMs: number;
  private exitFlushDeadline: number | undefined;
  private goneReason: string | undefined;
  /** lines dropped: over the buffer bound, or written after the reader was gone */
  dropped = 0;

  constructor(options: StdoutSinkOptions = {}) {
    this.exitFlushMs = options.exitFlushMs ?? 500;
    this.stream = new SonicBoom({
      fd: options.fd ?? 1,
      sync: false,
      maxLength: options.maxBufferBytes ?? 4 * 1024 * 1024,
      // A full pipe (EAGAIN) is retried while the process runs (the buffer bound applies); at exit only until the deadline.
      retryEAGAIN: () => this.exitFlushDeadline === undefined || Date.now() < this.exitFlushDeadline,
    });
    this.stream.on('error', (error: NodeJS.ErrnoException) => this.giveUp(error));
    this.stream.on('drop', () => this.dropped++);
  }

  /** Why output is being dropped (e.g. EPIPE), or undefined while it is written. */
  get gone(): string | undefined {
    return this.goneReason;
  }

  write(line: string): boolean {
    if (this.goneReason !== undefined) {
      this.dropped++;
      return true;
    }
    return this.stream.write(line);
  }

  flush(callback?: (error?: Error) => void): void {
    if (this.goneReason !== undefined) return callback?.();
    this.stream.flush(callback);
  }

  /** Writes what is buffered, waiting at most exitFlushMs for a pipe that is full; never throws. */
  flushSync(): void {
    if (this.goneReason !== undefined) return;
    this.exitFlushDeadline = Date.now() + this.exitFlushMs;
    try {
      this.stream.flushSync();
    } catch (error) {
      this.giveUp(error as NodeJS.ErrnoException);
    } finally {
      this.exitFlushDeadline = undefined;
    }
  }

  private giveUp(error: NodeJS.ErrnoException): void {
    this.goneReason ??= error.code ?? error.message;
  }
}

let shared: StdoutSink | undefined;

/** The process's one stdout sink (every logger shares it, so lines never interleave), flushed at exit. */
export function stdoutSink(): StdoutSink {
  if (!shared) {
    const sink = new StdoutSink();
    process.once('exit', () => sink.flushSync());
    shared = sink;
  }
  return shared;
}
