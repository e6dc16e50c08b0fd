import { AppendFile } from '../lib/append-file.ts';
import type { AccessLogFormat, ProxyConfig } from '../lib/config.ts';
import type { Logger } from '../lib/log.ts';
import { type AccessEntry, formatCombined, formatJson, LogClock } from './access-log-format.ts';

// A disk slower than the requests holds at most this much; lines past it are dropped and counted
// (AppendFile), so a stalled disk costs bounded memory and never backs up into the request path.
const MAX_BUFFER_BYTES = 4 * 1024 * 1024;
const RETRY_OPEN_MS = 10_000;
// lines reach the file in batches of 16 KiB, or a second after the first line of one (nginx's buffer= and flush=)
const BATCH_CHARS = 16 * 1024;
const FLUSH_MS = 1000;
/** the file left by a reopen gets this long to take what is still buffered for it */
const RETIRE_MS = 5_000;

/**
 * The proxy's access log (proxy.accessLog): one line per request answered, in nginx's combined
 * format or as JSON, appended asynchronously (lib/append-file.ts). reopen() is for log rotation
 * (SIGUSR1, as nginx).
 */
export class AccessLog {
  private readonly clock = new LogClock();
  private readonly file: AppendFile;
  private readonly format: AccessLogFormat;

  constructor(config: ProxyConfig['accessLog'], log: Logger) {
    this.format = config.format;
    this.file = new AppendFile(
      { path: config.path!, label: 'access log', maxBufferBytes: MAX_BUFFER_BYTES, batchChars: BATCH_CHARS, flushMs: FLUSH_MS, retryOpenMs: RETRY_OPEN_MS, retireMs: RETIRE_MS },
      log,
    );
  }

  get path(): string {
    return this.file.path;
  }

  /** lines dropped so far (the disk too slow, or the file not open) */
  get dropped(): number {
    return this.file.dropped;
  }

  open(): void {
    this.file.open();
  }

  record(entry: AccessEntry): void {
    this.clock.tick();
    this.file.write(this.format === 'json' ? formatJson(entry, this.clock.iso) : formatCombined(entry, this.clock.local));
  }

  reopen(): void {
    this.file.reopen();
  }

  close(deadlineMs: number): Promise<void> {
    return this.file.close(deadlineMs);
  }
}
