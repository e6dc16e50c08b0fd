import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { EventLog } from '../../supervisor/event-log.ts';
import type { HistoryStore } from '../../supervisor/history/types.ts';

// A history store that takes its time (a wedged embedded database waits out its statement
// deadline, then reopens) must not hold up the API's event reads: they answer from memory.

function historyThatNeverAnswers(): HistoryStore {
  const never = new Promise<never>(() => {});
  return {
    recordEvent() {},
    recordLaneMinute() {},
    events: () => never,
    laneStats: () => never,
    prune: () => never,
    setRetentionDays() {},
    flush: async () => false,
    status: () => ({ backend: 'embedded', healthy: false, pending: 0, dropped: 0 }),
    close: async () => {},
  };
}

test('events are read from memory when the history store does not answer', async () => {
  const log = new EventLog(pino({ level: 'silent' }));
  log.attach(historyThatNeverAnswers());
  log.record({ kind: 'drain', pool: 'web', worker: 'web-1', reason: 'manual' });
  const { source, events } = await log.since(undefined);
  assert.equal(source, 'memory');
  assert.deepEqual(events.map((event) => [event.kind, event.worker]), [['drain', 'web-1']]);
});
