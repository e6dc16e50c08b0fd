import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planEvents, splitByWindows, windows, type EventRecord, type TimedLoad } from '../../bench/reload/schedule.ts';

// The reload benchmark's schedule: which events are replacements, and which page loads count as
// during an event.

test('13 events over 120 s: 10 reloads and 3 replacements spread among them, evenly spaced', () => {
  const plan = planEvents(10, 3, 0, 120);
  assert.deepEqual(
    plan.flatMap((event, i) => (event.kind === 'replace' ? [i] : [])),
    [2, 6, 10],
  );
  assert.deepEqual(
    plan.filter((event) => event.kind === 'reload').map((event) => event.nth),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.deepEqual(
    plan.map((event) => event.atSec),
    Array.from({ length: 13 }, (_, i) => i * 10),
  );
});

test('a lone event runs at the start; no replacements gives only reloads', () => {
  assert.deepEqual(planEvents(1, 0, 5, 50), [{ kind: 'reload', nth: 1, atSec: 5 }]);
  assert.ok(planEvents(4, 0, 0, 40).every((event) => event.kind === 'reload'));
});

const event = (startedAt: number, endedAt: number): EventRecord => ({ kind: 'reload', nth: 1, atSec: 0, startedAt, endedAt, waitedMs: 0, ok: true });
const load = (startedAt: number, endedAt: number): TimedLoad => ({
  load: { ok: true, totalMs: endedAt - startedAt } as TimedLoad['load'],
  startedAt,
  endedAt,
});

test('a load overlapping an event or the window after it is during; one that ends before or starts after is outside', () => {
  const spans = windows([event(1000, 1200)], 500); // [1000, 1700]
  const before = load(100, 999);
  const overlapsStart = load(900, 1001);
  const inWindow = load(1600, 2000);
  const after = load(1700, 1800);
  const { during, outside } = splitByWindows([before, overlapsStart, inWindow, after], spans);
  assert.deepEqual(during, [overlapsStart.load, inWindow.load]);
  assert.deepEqual(outside, [before.load, after.load]);
});
