import type { PageLoad } from '../lib/browser.ts';

// When the reload bench's events happen, and which page loads count as "during" one of them.

export type EventKind = 'reload' | 'replace';

export interface PlannedEvent {
  kind: EventKind;
  /** 1 for the first event of its kind */
  nth: number;
  /** seconds after the load started */
  atSec: number;
}

/**
 * `reloads + replacements` events evenly spaced over [fromSec, toSec], the replacements spread
 * among the reloads (13 events, 3 replacements: the 3rd, 7th and 11th).
 */
export function planEvents(reloads: number, replacements: number, fromSec: number, toSec: number): PlannedEvent[] {
  const total = reloads + replacements;
  const step = total > 1 ? (toSec - fromSec) / (total - 1) : 0;
  const replaceAt = new Set(Array.from({ length: replacements }, (_, j) => Math.floor(((j + 0.5) * total) / replacements)));
  const counts: Record<EventKind, number> = { reload: 0, replace: 0 };
  return Array.from({ length: total }, (_, i) => {
    const kind: EventKind = replaceAt.has(i) ? 'replace' : 'reload';
    return { kind, nth: ++counts[kind], atSec: fromSec + i * step };
  });
}

/** An event as it happened (Date.now() ms). */
export interface EventRecord extends PlannedEvent {
  /** when the reload or replacement began (after waiting for an earlier replacement to finish) */
  startedAt: number;
  /** when the command returned (for a replacement: its successor listens) */
  endedAt: number;
  /** how long it waited for the previous replacement's old process to finish first */
  waitedMs: number;
  ok: boolean;
  detail?: string;
}

/** A page load with the wall-clock interval it took. */
export interface TimedLoad {
  load: PageLoad;
  startedAt: number;
  endedAt: number;
}

/** Each event's window: from its start until windowMs after it ended. */
export const windows = (events: EventRecord[], windowMs: number): [number, number][] => events.map((event) => [event.startedAt, event.endedAt + windowMs]);

/** Loads that overlap an event's window, and the rest. */
export function splitByWindows(loads: TimedLoad[], spans: [number, number][]): { during: PageLoad[]; outside: PageLoad[] } {
  const during: PageLoad[] = [];
  const outside: PageLoad[] = [];
  for (const timed of loads) {
    const overlaps = spans.some(([from, to]) => timed.startedAt < to && timed.endedAt > from);
    (overlaps ? during : outside).push(timed.load);
  }
  return { during, outside };
}
