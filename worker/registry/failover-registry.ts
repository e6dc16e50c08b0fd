import { withDeadline } from '../../lib/deadline.ts';
import type { Logger } from '../../lib/log.ts';
import type { FsRepoRegistry } from './fs-registry.ts';
import type { RegistryStatus, RepoRecord, RepoRegistry } from './types.ts';

export interface FailoverTimings {
  /** a whole registry call (several statements) against PostgreSQL */
  deadlineMs: number;
  /** first retry of PostgreSQL after an outage is noticed; doubled per failed retry up to maxBackoffMs */
  minBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_FAILOVER_TIMINGS: FailoverTimings = { deadlineMs: 4000, minBackoffMs: 500, maxBackoffMs: 10_000 };

const CLOSE_DEADLINE_MS = 2000;

/**
 * The PostgreSQL registry with a way out: when PostgreSQL fails (refused, stopped, or a call that
 * does not finish within the deadline) the worker goes on serving from disk, which is the truth
 * about which repositories exist, with what PostgreSQL alone knows (each repository's last head)
 * kept from its last answers. Requests then no longer wait on PostgreSQL at all; one background
 * retry at a time, with backoff, finds out when it is back. The outage and the recovery are
 * logged once each.
 */
export class FailoverRegistry implements RepoRegistry {
  private degradedSince?: Date;
  private lastError?: string;
  private backoffMs: number;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  /** heads seen during the outage, written once PostgreSQL is back (at most one per repository) */
  private readonly pendingHeads = new Map<string, string>();

  constructor(
    private readonly primary: RepoRegistry,
    private readonly lastKnown: FsRepoRegistry,
    private readonly log: Logger,
    private readonly timings: FailoverTimings = DEFAULT_FAILOVER_TIMINGS,
  ) {
    this.backoffMs = timings.minBackoffMs;
  }

  list(): Promise<RepoRecord[]> {
    return this.read(
      () => this.primary.list(),
      (records) => records.forEach((record) => this.remember(record)),
      () => this.lastKnown.list(),
    );
  }

  get(name: string): Promise<RepoRecord | undefined> {
    return this.read(
      () => this.primary.get(name),
      (record) => record && this.remember(record),
      () => this.lastKnown.get(name),
    );
  }

  async recordHead(name: string, head: string): Promise<void> {
    await this.lastKnown.recordHead(name, head);
    if (!this.degradedSince) {
      try {
        return await this.bounded(() => this.primary.recordHead(name, head));
      } catch (error) {
        this.degrade(error);
      }
    }
    this.pendingHeads.set(name, head);
  }

  status(): RegistryStatus {
    if (!this.degradedSince) return { backend: 'postgresql', degraded: false };
    return { backend: 'postgresql', degraded: true, degradedSince: this.degradedSince.toISOString(), lastError: this.lastError };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await withDeadline(this.primary.close(), CLOSE_DEADLINE_MS, 'closing the PostgreSQL registry').catch((error: Error) =>
      this.log.warn({ err: error.message }, 'registry: PostgreSQL pool not closed cleanly'),
    );
  }

  private bounded<T>(call: () => Promise<T>): Promise<T> {
    return withDeadline(call(), this.timings.deadlineMs, 'PostgreSQL registry call');
  }

  private async read<T>(fromPrimary: () => Promise<T>, remember: (value: T) => void, fromLastKnown: () => Promise<T>): Promise<T> {
    if (!this.degradedSince) {
      try {
        const value = await this.bounded(fromPrimary);
        remember(value);
        return value;
      } catch (error) {
        this.degrade(error);
      }
    }
    return fromLastKnown();
  }

  private remember(record: RepoRecord): void {
    if (record.lastHead) void this.lastKnown.recordHead(record.name, record.lastHead);
  }

  private degrade(error: unknown): void {
    this.lastError = (error as Error).message;
    if (this.degradedSince || this.closed) return;
    this.degradedSince = new Date();
    this.backoffMs = this.timings.minBackoffMs;
    this.log.warn(
      { err: this.lastError },
      'registry: PostgreSQL unreachable; serving repositories from disk and the last known registry until it is back',
    );
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    // jitter, so that a fleet of workers does not retry in step
    const delay = Math.round(this.backoffMs * (0.8 + 0.4 * Math.random()));
    this.retryTimer = setTimeout(() => void this.retry(), delay);
    this.retryTimer.unref();
  }

  private async retry(): Promise<void> {
    try {
      // a full list also brings the table back in step with the disk
      const records = await this.bounded(() => this.primary.list());
      for (const [name, head] of this.pendingHeads) await this.bounded(() => this.primary.recordHead(name, head));
      if (this.closed) return;
      for (const record of records) this.remember({ ...record, lastHead: this.pendingHeads.get(record.name) ?? record.lastHead });
      this.pendingHeads.clear();
      const outageMs = Date.now() - this.degradedSince!.getTime();
      this.degradedSince = undefined;
      this.lastError = undefined;
      this.log.info({ outageMs }, 'registry: PostgreSQL is back; serving from it again');
    } catch (error) {
      this.lastError = (error as Error).message;
      this.backoffMs = Math.min(this.timings.maxBackoffMs, this.backoffMs * 2);
      this.log.debug({ err: this.lastError, nextRetryMs: this.backoffMs }, 'registry: PostgreSQL still unreachable');
      this.scheduleRetry();
    }
  }
}
