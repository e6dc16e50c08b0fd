import type http from 'node:http';
import { ClientPace, type PaceLimits } from '../client-pace.ts';
import type { Generation } from './generation.ts';

export interface ReaderOptions extends PaceLimits {
  /** response bytes held in the client socket's buffer before the reader waits for it to drain */
  windowBytes: number;
}

export interface ReaderHooks {
  /** body bytes handed to the client's socket */
  sent(bytes: number): void;
  /** the client is being cut (too slow, or the generation failed): why, for the log */
  cut(reason: string): void;
}

/** bytes read from the spool file at a time: with the window, what one reader holds in memory */
const READ_BYTES = 64 * 1024;

/**
 * One client reading a generation (a shared clone answer) at its own pace: the worker's head at
 * once, then the file from its start, following it while it is written (read what is there,
 * wait for more, end when it is complete). A failed generation cuts the client (never a clean
 * end). Every wait on the client is bounded (client-pace.ts): no progress for the send timeout,
 * or, while bytes are ready for it, less than the minimum rate.
 */
export class SpoolReader {
  private offset = 0;
  private reading = false;
  private done = false;
  private readonly pace: ClientPace;
  private readonly onChange = () => this.pump();

  constructor(
    private readonly generation: Generation,
    private readonly res: http.ServerResponse,
    private readonly options: ReaderOptions,
    private readonly hooks: ReaderHooks,
  ) {
    this.pace = new ClientPace(res, options, { stillWaiting: () => this.behind(), tooSlow: (reason) => this.cut(reason) });
  }

  /** Sends the head (the worker's status and headers, then `extraHeaders`) and the body as it comes. */
  start(extraHeaders: readonly string[]): void {
    const { generation, res } = this;
    const head = generation.head!;
    generation.hold();
    generation.watch(this.onChange);
    res.on('drain', this.onChange);
    res.on('close', () => this.close());
    res.writeHead(head.status, head.statusMessage, [...head.headers, ...extraHeaders]);
    this.pump();
  }

  private behind(): boolean {
    return this.offset < this.generation.written;
  }

  private pump(): void {
    if (this.done || this.reading) return;
    const { generation, res } = this;
    if (generation.state === 'failed') return this.cut(`shared answer failed: ${generation.failure}`);
    if (this.behind()) this.pace.startMeasuring();
    else this.pace.stopMeasuring();
    if (res.writableLength >= this.options.windowBytes) return this.pace.watch();
    if (this.behind()) return this.readMore();
    if (generation.state !== 'complete') {
      // caught up with the worker (the next write calls pump): the head goes now, not with the first body bytes
      if (this.offset === 0) res.flushHeaders();
      return;
    }
    res.end();
    if (res.writableFinished) this.close();
    else this.pace.watch();
  }

  private readMore(): void {
    this.reading = true;
    this.generation.read(this.offset, READ_BYTES).then(
      (chunk) => {
        this.reading = false;
        if (this.done) return;
        if (chunk.length === 0) return this.cut('spool file read nothing');
        this.offset += chunk.length;
        this.res.write(chunk);
        this.hooks.sent(chunk.length);
        this.pump();
      },
      (error: Error) => {
        this.reading = false;
        this.cut(`spool file read failed: ${error.message}`);
      },
    );
  }

  private cut(reason: string): void {
    if (this.done) return;
    this.hooks.cut(reason);
    this.close();
    this.res.destroy();
  }

  /** The reader's part ends: it lets go of the generation (whose file may close now). Idempotent. */
  private close(): void {
    if (this.done) return;
    this.done = true;
    this.pace.stop();
    this.res.off('drain', this.onChange);
    this.generation.unwatch(this.onChange);
    this.generation.letGo();
  }
}
