import type { FleetEvent } from '../supervisor/history/types.ts';
import { formatMs } from './units.ts';

/** A fleet event as GET /api/events carries it. */
export type EventJson = Omit<FleetEvent, 'at'> & { at: string };

export type Operation = 'recycle' | 'drain';

/** How one worker's operation ended: the text of its progress line after the name. */
export interface Outcome {
  ok: boolean;
  text: string;
}

const ms = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** Events that end any operation on their worker badly. */
function failure(event: EventJson): Outcome | undefined {
  switch (event.kind) {
    case 'error':
      return { ok: false, text: `failed: ${event.reason ?? 'error'}` };
    case 'crash':
      return { ok: false, text: `crashed: ${event.reason ?? 'exited'}` };
    case 'stop':
      return { ok: false, text: `stopped: ${event.reason ?? 'through PM2'}` };
    default:
      return undefined;
  }
}

/**
 * The end of `operation` on the event's worker that this event marks, or undefined for a step on
 * the way (a drain beginning). The caller passes only events about the workers it follows.
 */
export function outcomeOf(operation: Operation, event: EventJson): Outcome | undefined {
  const detail = event.detail ?? {};
  if (operation === 'recycle') {
    if (event.kind === 'recycle') {
      const drainMs = ms(detail.drainMs);
      const drain = detail.drainTimedOut ? `drain timed out after ${formatMs(drainMs)}` : `drained in ${formatMs(drainMs)}`;
      return { ok: !detail.drainTimedOut, text: `${drain}  restarted  healthy (${formatMs(ms(detail.totalMs) - drainMs)})` };
    }
    return failure(event);
  }
  if (event.kind === 'drain' && typeof detail.drained === 'boolean') {
    const drainMs = formatMs(ms(detail.drainMs));
    return detail.drained ? { ok: true, text: `drained in ${drainMs}` } : { ok: false, text: `drain timed out after ${drainMs}, requests still in flight (out of rotation)` };
  }
  if (event.kind === 'ready') return { ok: false, text: `back in rotation before the drain finished (${event.reason ?? 'ready'})` };
  if (event.kind === 'recycle') return { ok: false, text: 'recycled before the drain finished (back in rotation)' };
  return failure(event);
}
