import { join } from 'node:path';
import type { Logger } from '../../lib/log.ts';
import { BoundedQueue } from './buffer.ts';
import type { Db } from './db.ts';
import { createEmbeddedDb } from './embedded-db.ts';
import { loadMigrations, migrate } from './migrate.ts';
import { createPgDb } from './pg-db.ts';
import { deleteOlderThan, selectEvents, selectLaneStats, writeBatch } from './queries.ts';
import { pendingEvent, pendingLane, type Pending } from './records.ts';
import type { FleetEvent, HistoryOptions, HistoryStatus, HistoryStore, LaneMinute } from './types.ts';

export type * from './types.ts';

const DAY_MS = 86_400_000;

function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorText(err.errors[0]);
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

/** SQLSTATE class 22 (data exception) or 23 (integrity constraint): the batch, not the connection, is at fault. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

class SqlHistoryStore implements HistoryStore {
  private readonly queue: BoundedQueue<Pending>;
  private readonly flushIntervalMs: number;
  private readonly maxBackoffMs: number;
  private readonly batchSize: number;
  private readonly log: Logger;
  private healthy = false;
  private lastError?: string;
  private migrated?: Promise<void>;
  private flushing?: Promise<boolean>;
  private backoffMs = 0;
  private flushTimer?: NodeJS.Timeout;
  private readonly pruneTimer: NodeJS.Timeout;
  private closed = false;
  private retentionDays: number;

  constructor(
    private readonly db: Db,
    private readonly opts: HistoryOptions,
  ) {
    this.log = opts.log;
    this.queue = new BoundedQueue(opts.bufferLimit ?? 10_000);
    this.flushIntervalMs = opts.flushIntervalMs ?? 1_000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.batchSize = opts.batchSize ?? 500;
    this.retentionDays = opts.retentionDays;
    this.pruneTimer = setInterval(() => void this.prune().catch(() => {}), opts.pruneIntervalMs ?? 3_600_000);
    this.pruneTimer.unref();
  }

  recordEvent(e: FleetEvent): void {
    this.enqueue(pendingEvent(e), e);
  }

  recordLaneMinute(s: LaneMinute): void {
    this.enqueue(pendingLane(s), s);
  }

  async events(opts: { since?: Date; limit?: number }): Promise<FleetEvent[]> {
    await this.ensureMigrated();
    return selectEvents(this.db, opts.since ?? new Date(0), opts.limit ?? 1000);
  }

  async laneStats(opts: { since: Date; lane?: string }): Promise<LaneMinute[]> {
    await this.ensureMigrated();
    return selectLaneStats(this.db, opts.since, opts.lane);
  }

  async prune(now = new Date()): Promise<number> {
    await this.ensureMigrated();
    const deleted = await deleteOlderThan(this.db, new Date(now.getTime() - this.retentionDays * DAY_MS));
    if (deleted > 0) this.log.info({ deleted, retentionDays: this.retentionDays }, 'history: pruned');
    return deleted;
  }

  setRetentionDays(days: number): void {
    this.retentionDays = days;
  }

  flush(): Promise<boolean> {
    this.flushing ??= this.writePending().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  status(): HistoryStatus {
    const s: HistoryStatus = {
      backend: this.db.backend,
      healthy: this.healthy,
      pending: this.queue.size,
      dropped: this.queue.dropped,
    };
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.flushTimer);
    clearInterval(this.pruneTimer);
    await this.flushing;
    if (this.queue.size > 0 && !(await this.flush())) {
      this.log.warn({ lost: this.queue.size }, 'history: closing with unwritten records');
    }
    await this.db.close().catch((err) => this.log.warn({ err: errorText(err) }, 'history: close failed'));
  }

  /** First connection: migrations, then an early prune. Retried on the next use after a failure. */
  ensureMigrated(): Promise<void> {
    this.migrated ??= (async () => {
      const applied = await migrate(this.db, await loadMigrations());
      if (applied.length > 0) this.log.info({ applied, backend: this.db.backend }, 'history: migrations applied');
      void this.prune().catch(() => {});
    })();
    this.migrated.catch(() => (this.migrated = undefined));
    return this.migrated;
  }

  /** The flush loop: every interval while healthy, with doubling backoff while not. */
  schedule(): void {
    if (this.closed) return;
    const delay = this.healthy ? this.flushIntervalMs : Math.max(this.backoffMs, this.flushIntervalMs);
    this.flushTimer = setTimeout(() => void this.flush().then(() => this.schedule()), delay);
    this.flushTimer.unref();
  }

  private enqueue(p: Pending | undefined, raw: unknown): void {
    if (this.closed) return;
    if (p) this.queue.push(p);
    else this.log.warn({ record: raw }, 'history: record without a valid timestamp ignored');
  }

  private async writePending(): Promise<boolean> {
    try {
      await this.ensureMigrated();
      while (this.queue.size > 0) {
        const batch = this.queue.take(this.batchSize);
        try {
          await this.db.transaction((q) => writeBatch(q, batch));
        } catch (err) {
          if (!isDataError(err)) {
            this.queue.requeue(batch);
            throw err;
          }
          // Retrying a batch the server rejects for its content would wedge the queue for good.
          this.queue.dropped += batch.length;
          this.log.error({ err: errorText(err), records: batch.length }, 'history: batch rejected by the database, dropped');
        }
      }
      this.setHealthy();
      return true;
    } catch (err) {
      this.setUnhealthy(err);
      return false;
    }
  }

  private setHealthy(): void {
    if (!this.healthy && this.lastError !== undefined) {
      this.log.info({ backend: this.db.backend, dropped: this.queue.dropped }, 'history: database reachable again, resumed');
    }
    this.healthy = true;
    this.backoffMs = 0;
  }

  private setUnhealthy(err: unknown): void {
    this.lastError = errorText(err);
    // Once per outage: the loop retries quietly until a write succeeds.
    if (this.healthy || this.backoffMs === 0) {
      this.log.warn(
        { backend: this.db.backend, err: this.lastError, pending: this.queue.size },
        'history: database unavailable, buffering in memory',
      );
    }
    this.healthy = false;
    this.backoffMs = Math.min(this.maxBackoffMs, Math.max(this.flushIntervalMs, this.backoffMs * 2));
  }
}

/**
 * Opens the fleet history: PostgreSQL when `databaseUrl` is set, else embedded PGlite in
 * `<dataDir>/history-db`. Never rejects because the database is down: the store starts unhealthy
 * and connects (and migrates) on a later flush.
 */
export async function openHistory(opts: HistoryOptions): Promise<HistoryStore> {
  const statementTimeoutMs = opts.statementTimeoutMs ?? 30_000;
  const db = opts.databaseUrl
    ? createPgDb(opts.databaseUrl, opts.connectTimeoutMs ?? 5_000, opts.log, statementTimeoutMs)
    : createEmbeddedDb(join(opts.dataDir, 'history-db'), { statementTimeoutMs });
  const store = new SqlHistoryStore(db, opts);
  await store.flush();
  store.schedule();
  return store;
}
