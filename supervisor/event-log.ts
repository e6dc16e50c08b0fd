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

/**
 * Fleet events: logged, kept in memory (the recent ones), and written to the history store when
 * there is one. Emits 'event' for live listeners (the dashboard).
 */
export class EventLog extends EventEmitter {
  private readonly recent: FleetEvent[] = [];
  private history: HistoryStore | undefined;

  constructor(private readonly log: Logger) {
    super();
  }

  /** Writes to `history` from now on, starting with what happened before it opened. */
  attach(history: HistoryStore): void {
    this.history = history;
    for (const event of this.recent) history.recordEvent(event);
  }

  record(event: Omit<FleetEvent, 'at'>): FleetEvent {
    const full: FleetEvent = { at: new Date(), ...event };
    this.recent.push(full);
    if (this.recent.length > RECENT_LIMIT) this.recent.shift();
    this.history?.recordEvent(full);
    const level = event.kind === 'crash' || event.kind === 'error' ? 'warn' : 'info';
    this.log[level]({ event: event.kind, pool: event.pool, worker: event.worker, reason: event.reason, ...event.detail }, `fleet event: ${event.kind}`);
    this.emit('event', full);
    return full;
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
