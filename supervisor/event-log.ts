import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { withDeadline } from '../lib/deadline.ts';
import type { Logger } from '../lib/log.ts';
import type { FleetEvent, HistoryStore } from './history/types.ts';

const RECENT_LIMIT = 1000;
/**
 * How long an API read waits for the history store. The store's own bounds are for writes (a
 * statement may take 30 s, reopening the embedded database longer); a reader is answered sooner.
 */
export const HISTORY_READ_TIMEOUT_MS = 3000;

/** Where a reader of `after()` stands: the events of `stream` after id `after`. */
export interface EventCursor {
  stream: string;
  after: number;
}

/**
 * Fleet events: logged, kept in memory (the recent ones), and written to the history store when
 * there is one. Emits 'event' for live listeners (the dashboard). Each gets the next id of this
 * process's `stream`, so that a client can follow an operation without missing a fast step.
 */
export class EventLog extends EventEmitter {
  /** names this process's sequence of ids: another supervisor process counts from 1 again */
  readonly stream = randomUUID();
  private readonly recent: FleetEvent[] = [];
  private history: HistoryStore | undefined;
  private lastId = 0;

  constructor(
    private readonly log: Logger,
    /** on a site of several hosts, this supervisor's host: in every event's detail, so the shared history tells hosts apart */
    private readonly host?: string,
  ) {
    super();
  }

  /** Writes to `history` from now on, starting with what happened before it opened. */
  attach(history: HistoryStore): void {
    this.history = history;
    for (const event of this.recent) history.recordEvent(event);
  }

  record(event: Omit<FleetEvent, 'at' | 'id'>): FleetEvent {
    const full: FleetEvent = { id: ++this.lastId, at: new Date(), ...event, ...(this.host ? { detail: { ...event.detail, host: this.host } } : {}) };
    this.recent.push(full);
    if (this.recent.length > RECENT_LIMIT) this.recent.shift();
    this.history?.recordEvent(full);
    const level = event.kind === 'crash' || event.kind === 'error' ? 'warn' : 'info';
    this.log[level]({ event: event.kind, pool: event.pool, worker: event.worker, reason: event.reason, ...event.detail }, `fleet event: ${event.kind}`);
    this.emit('event', full);
    return full;
  }

  /** Where the events recorded from now on begin. */
  cursor(): EventCursor {
    return { stream: this.stream, after: this.lastId };
  }

  /**
   * The events of this process after id `after`, oldest first, up to `limit`; `missed` when some
   * of them are no longer in memory (more than RECENT_LIMIT were recorded since).
   */
  after(after: number, limit = RECENT_LIMIT): { stream: string; events: FleetEvent[]; missed: boolean } {
    const oldest = this.recent[0]?.id ?? this.lastId + 1;
    const events = this.recent.filter((event) => event.id! > after).slice(0, limit);
    return { stream: this.stream, events, missed: after < oldest - 1 };
  }

  /** Events at or after `since`, oldest first: from history when it answers, else from memory. */
  async since(since: Date | undefined, limit = RECENT_LIMIT): Promise<{ events: FleetEvent[]; source: 'history' | 'memory' }> {
    if (this.history) {
      try {
        return { events: await withDeadline(this.history.events({ since, limit }), HISTORY_READ_TIMEOUT_MS, 'reading the history'), source: 'history' };
      } catch {
        // the database is unreachable or slow: what this process remembers is better than nothing
      }
    }
    const events = this.recent.filter((event) => !since || event.at >= since).slice(-limit);
    return { events, source: 'memory' };
  }
}
