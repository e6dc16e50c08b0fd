import type http from 'node:http';
import type { FileHandle } from 'node:fs/promises';

/**
 * pending: its leader waits for a worker's answer; writing: the answer is shareable and its body
 * goes to the file; complete: all of it is there; failed: cut mid-body (never served again);
 * declined: no shareable answer came (not 200, the leader failed or left before one).
 */
export type GenerationState = 'pending' | 'writing' | 'complete' | 'failed' | 'declined';

/** The worker's answer as every reader gets it: its status and its headers, hop-by-hop ones removed. */
export interface AnswerHead {
  status: number;
  statusMessage: string | undefined;
  /** flat [name, value, ...] */
  headers: readonly string[];
  /** the worker that produced it */
  worker: string;
}

/** Disk bytes a generation takes from its spool's budget; they stay taken until its file is closed. */
export interface DiskBudget {
  reserve(bytes: number): boolean;
  release(bytes: number): void;
  /** the spool file could not be opened or written (a full or failing disk) */
  diskFailed(): void;
}

/** chunks waiting for the file: past this the worker is paused until they are written */
const PENDING_WRITE_BYTES = 256 * 1024;

/**
 * When the disk fails a write, the rest of the answer is kept in memory up to this much for the
 * readers it already has (a full disk cuts no answer smaller than that); past it, it fails.
 */
export const MEMORY_FALLBACK_BYTES = 16 * 1024 * 1024;

/**
 * One worker answer shared by identical clone requests: written to a spool file at the worker's
 * speed, read by any number of readers at theirs (spool-reader.ts). The file is unlinked as soon
 * as it is open and read through this one handle, which closes (and gives its bytes back to the
 * budget) when no one holds the generation any more: its spool entry, its writer, its readers.
 */
export class Generation {
  state: GenerationState = 'pending';
  head: AnswerHead | undefined;
  /** bytes readers may read from offset 0: in the file, then (after a disk failure) in memory */
  written = 0;
  /** bytes in the file; the rest of `written` is in `memory` */
  private fileBytes = 0;
  /** after the disk failed a write: what follows the file's bytes, in order */
  private memory: Buffer[] | undefined;
  private memoryBytes = 0;
  failure: string | undefined;
  /** followers waiting for this generation's head (bounded by the share stage) */
  waiters = 0;
  private file: FileHandle | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private writing = false;
  private ended = false;
  private reserved = 0;
  /** file reads and writes in flight: the handle closes once they settle */
  private operations = 0;
  /** the spool's entry holds one from the start */
  private holders = 1;
  private closed = false;
  private source: http.IncomingMessage | undefined;
  private readonly watchers = new Set<() => void>();

  constructor(
    private readonly budget: DiskBudget,
    /** the spool learns when the generation is complete, failed or declined */
    private readonly settled: (generation: Generation) => void,
  ) {}

  /** Called on every change: the head, more bytes written, the end, a failure or a decline. */
  watch(watcher: () => void): void {
    this.watchers.add(watcher);
  }

  unwatch(watcher: () => void): void {
    this.watchers.delete(watcher);
  }

  hold(): void {
    this.holders++;
  }

  letGo(): void {
    this.holders--;
    this.closeIfUnused();
  }

  /** No shareable answer: the followers waiting for one go their own way, and nothing is kept. */
  decline(reason: string): void {
    if (this.state !== 'pending') return;
    this.state = 'declined';
    this.failure = reason;
    this.settle();
  }

  /**
   * The worker's answer is shareable: its head is known now (readers can start at once) and its
   * body goes from `source` to the file opened by `openFile`, at the worker's speed whatever the
   * readers do. `produced` is called when the worker has sent all of it.
   */
  writeFrom(source: http.IncomingMessage, head: AnswerHead, openFile: () => Promise<FileHandle>, produced: () => void): void {
    if (this.state !== 'pending') throw new Error(`a ${this.state} generation cannot take an answer`);
    this.state = 'writing';
    this.head = head;
    this.source = source;
    this.holders++; // the writer's, until the answer is complete or failed
    source.on('data', (chunk: Buffer) => this.append(chunk));
    source.on('end', () => {
      produced();
      this.ended = true;
      this.flush();
    });
    source.on('error', (error: Error) => this.fail(`worker answer failed: ${error.message}`));
    source.on('aborted', () => this.fail('worker answer cut'));
    source.on('close', () => {
      if (!source.complete) this.fail('worker answer cut');
    });
    openFile().then(
      (file) => {
        if (this.state !== 'writing') return void file.close().catch(() => {});
        this.file = file;
        this.flush();
      },
      (error: Error) => this.diskFailed(`spool file: ${error.message}`),
    );
    this.notify();
  }

  /** Up to `maxBytes` from `offset` (less when fewer are written); rejects once the file is gone. */
  async read(offset: number, maxBytes: number): Promise<Buffer> {
    if (offset >= this.fileBytes && this.memory) {
      let start = offset - this.fileBytes;
      for (const chunk of this.memory) {
        if (start < chunk.length) return chunk.subarray(start, start + maxBytes);
        start -= chunk.length;
      }
      return Buffer.alloc(0);
    }
    const length = Math.min(maxBytes, this.fileBytes - offset);
    if (length <= 0) return Buffer.alloc(0);
    if (!this.file || this.closed) throw new Error('spool file closed');
    this.operations++;
    try {
      const { bytesRead, buffer } = await this.file.read(Buffer.allocUnsafe(length), 0, length, offset);
      return bytesRead === length ? buffer : buffer.subarray(0, bytesRead);
    } finally {
      this.operations--;
      this.closeIfUnused();
    }
  }

  /** Cuts the generation: its readers are cut too, and its partial file is never served. */
  fail(reason: string): void {
    if (this.state !== 'writing') return;
    this.state = 'failed';
    this.failure = reason;
    this.pending = [];
    this.pendingBytes = 0;
    this.memory = undefined;
    this.source?.destroy();
    this.settle();
    this.letGo(); // the writer's
  }

  private append(chunk: Buffer): void {
    if (this.state !== 'writing') return;
    if (this.memory) return this.keepInMemory([chunk]);
    if (!this.budget.reserve(chunk.length)) return this.fail('clone spool full');
    this.reserved += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes > PENDING_WRITE_BYTES) this.source?.pause();
    this.flush();
  }

  private flush(): void {
    if (this.memory) return this.ended && this.state === 'writing' ? this.complete() : undefined;
    if (this.writing || this.state !== 'writing' || !this.file) return;
    if (this.pending.length === 0) return this.ended ? this.complete() : undefined;
    const parts = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = true;
    this.operations++;
    this.file.writev(parts, this.fileBytes).then(
      ({ bytesWritten }) => this.afterWrite(parts, bytes, bytesWritten),
      (error: Error) => this.afterWrite(parts, bytes, 0, error.message),
    );
  }

  private afterWrite(parts: Buffer[], bytes: number, bytesWritten: number, error?: string): void {
    this.writing = false;
    this.operations--;
    if (this.state === 'writing') {
      if (bytesWritten !== bytes) {
        // what a short write put in the file is ignored: the readers get those bytes from memory
        this.pending = [...parts, ...this.pending];
        this.diskFailed(`spool file write failed: ${error ?? 'short write'}`);
      } else {
        this.fileBytes += bytes;
        this.written += bytes;
        if (!this.ended && this.pendingBytes <= PENDING_WRITE_BYTES) this.source?.resume();
        this.notify();
        this.flush();
      }
    }
    this.closeIfUnused();
  }

  /**
   * The disk failed: this answer goes on in memory for the readers it has (the spool drops it, so
   * no new one joins), bounded by MEMORY_FALLBACK_BYTES.
   */
  private diskFailed(reason: string): void {
    if (this.state !== 'writing' || this.memory) return;
    this.budget.diskFailed();
    this.failure = reason;
    this.memory = [];
    const parts = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.settled(this); // still writing: the spool lets it go, and new requests of its key go elsewhere
    this.keepInMemory(parts);
  }

  private keepInMemory(parts: Buffer[]): void {
    for (const part of parts) {
      this.memory!.push(part);
      this.memoryBytes += part.length;
    }
    if (this.memoryBytes > MEMORY_FALLBACK_BYTES) return this.fail(`${this.failure}; the rest of the answer is larger than the memory fallback`);
    this.written = this.fileBytes + this.memoryBytes;
    this.source?.resume();
    this.notify();
    if (this.ended) this.complete();
  }

  private complete(): void {
    this.state = 'complete';
    this.source = undefined;
    this.settle();
    this.letGo(); // the writer's
  }

  /**
   * The spool learns first, so that a waiting reader that retries finds the key free rather than
   * this generation again; the watchers are taken before, since the spool may close it.
   */
  private settle(): void {
    const watchers = [...this.watchers];
    this.settled(this);
    for (const watcher of watchers) watcher();
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  private closeIfUnused(): void {
    if (this.holders > 0 || this.operations > 0 || this.closed) return;
    this.closed = true;
    this.watchers.clear();
    this.budget.release(this.reserved);
    this.reserved = 0;
    const file = this.file;
    this.file = undefined;
    if (file) void file.close().catch(() => {});
  }
}
