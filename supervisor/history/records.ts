import { randomUUID } from 'node:crypto';
import type { FleetEvent, LaneMinute } from './types.ts';

/**
 * A record as buffered: validated and serialised up front, so a bad one cannot wedge a batch later.
 * An event's `uid` is its idempotency key: a batch re-sent after a lost commit answer inserts nothing twice.
 */
export type Pending = { event: FleetEvent; detailJson: string | null; uid: string } | { lane: LaneMinute };

const validDate = (d: unknown): Date | undefined => {
  const date = d instanceof Date ? new Date(d.getTime()) : new Date(d as string | number);
  return Number.isFinite(date.getTime()) ? date : undefined;
};
const count = (n: number): number => (Number.isFinite(n) ? Math.min(2 ** 31 - 1, Math.max(0, Math.round(n))) : 0);
const ms = (n: number): number => (Number.isFinite(n) ? n : 0);

function serialise(detail: Record<string, unknown> | undefined): string | null {
  if (detail === undefined) return null;
  try {
    return JSON.stringify(detail);
  } catch {
    return JSON.stringify({ unserialisable: true });
  }
}

/** Undefined when the event has no usable timestamp. */
export function pendingEvent(e: FleetEvent): Pending | undefined {
  const at = validDate(e.at);
  return at && { event: { ...e, at }, detailJson: serialise(e.detail), uid: randomUUID() };
}

/** Undefined when the minute is not a usable timestamp; `minute` is truncated to the minute. */
export function pendingLane(s: LaneMinute): Pending | undefined {
  const minute = validDate(s.minute);
  if (!minute) return undefined;
  minute.setUTCSeconds(0, 0);
  return {
    lane: {
      minute,
      lane: String(s.lane),
      requests: count(s.requests),
      errors: count(s.errors),
      p50Ms: ms(s.p50Ms),
      p99Ms: ms(s.p99Ms),
      queuePeak: count(s.queuePeak),
      proxy: String(s.proxy ?? '').slice(0, 200),
    },
  };
}
