import type { Logger } from '../../lib/log.ts';

export type FleetEventKind = 'start' | 'ready' | 'drain' | 'recycle' | 'crash' | 'config' | 'reload' | 'error' | 'stop';

export interface FleetEvent {
  /** set by the supervisor that recorded it: 1, 2, ... within its `EventLog.stream` (not kept in the history store) */
  id?: number;
  at: Date;
  kind: FleetEventKind;
  pool?: string;
  worker?: string;
  reason?: string;
  detail?: Record<string, unknown>;
}

/** One lane's aggregate for one wall-clock minute; `minute` is truncated to the minute on record. */
export interface LaneMinute {
  minute: Date;
  lane: string;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  queuePeak: number;
  /** the proxy that counted it (its id), when recorded; read back, minutes are summed over every proxy */
  proxy?: string;
}

export interface HistoryStatus {
  backend: 'postgres' | 'embedded';
  healthy: boolean;
  /** Records buffered in memory, not yet written. */
  pending: number;
  /** Records discarded (oldest first) because the buffer was full during an outage. */
  dropped: number;
  lastError?: string;
}

export interface HistoryStore {
  /** Never blocks or throws: buffered and written in batches. */
  recordEvent(e: FleetEvent): void;
  /** Never blocks or throws; a later record for the same (minute, lane) replaces the earlier one. */
  recordLaneMinute(s: LaneMinute): void;
  /** The newest `limit` (default 1000) events at or after `since`, oldest first. Rejects while the database is unreachable. */
  events(opts: { since?: Date; limit?: number }): Promise<FleetEvent[]>;
  laneStats(opts: { since: Date; lane?: string }): Promise<LaneMinute[]>;
  /** Deletes rows older than the retention; resolves to the number deleted. */
  prune(now?: Date): Promise<number>;
  /** A new retention (a config reload), from the next prune on. */
  setRetentionDays(days: number): void;
  /** Writes the buffer now; resolves false (never rejects) when the database is unreachable. */
  flush(): Promise<boolean>;
  status(): HistoryStatus;
  /** Final flush attempt, then releases the database. */
  close(): Promise<void>;
}

export interface HistoryOptions {
  /** PostgreSQL via `pg` when set, else embedded PGlite under `<dataDir>/history-db`. */
  databaseUrl?: string;
  dataDir: string;
  retentionDays: number;
  log: Logger;
  /** Defaults: 1 s flush, 30 s max retry backoff, 10,000 buffered records, 500 per batch, hourly prune, 5 s connect timeout. */
  flushIntervalMs?: number;
  maxBackoffMs?: number;
  bufferLimit?: number;
  batchSize?: number;
  pruneIntervalMs?: number;
  connectTimeoutMs?: number;
  /** One statement's bound (default 30 s): PostgreSQL's query timeout; the embedded database's thread is ended past it. */
  statementTimeoutMs?: number;
}
