import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { withDeadline } from '../../../lib/deadline.ts';
import { openHistory, type HistoryStore } from '../../../supervisor/history/store.ts';
import { SmallTmpfs } from '../../helpers/small-tmpfs.ts';

// The supervisor's embedded history (PGlite) on a disk that fills up while it writes. PostgreSQL
// preallocates its WAL in 16 MB segments: with less than that free, the statement that needs the
// next segment never returned (PGlite spun at full CPU, and freeing space did not help), so the
// flush loop stopped for good and every history read waited forever. Now a thread that misses its
// statement deadline is ended and the database reopened: writes fail while the disk is full and
// resume once there is room, and no record is lost (they wait in the bounded buffer).

const STATEMENT_TIMEOUT_MS = 3000;
// far beyond a statement deadline plus a reopen: only a wedged store takes this long
const FLUSH_BOUND_MS = 60_000;
// less than one WAL segment (16 MB), more than the table needs before the WAL runs out of its first one
const LEFT_FREE_BYTES = 10 * 1024 * 1024;
const EVENTS_PER_ROUND = 500;
const MAX_ROUNDS = 80;

let disk: SmallTmpfs;
let history: HistoryStore;

before(async () => {
  disk = SmallTmpfs.mount(96 * 1024 * 1024);
  history = await openHistory({
    dataDir: disk.dir,
    retentionDays: 1,
    log: pino({ level: 'silent' }),
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    // the test drives every flush itself
    flushIntervalMs: 3_600_000,
    bufferLimit: MAX_ROUNDS * EVENTS_PER_ROUND,
  });
});

after(async () => {
  disk?.unfill();
  // bounded: a wedged store (the bug this test is about) would never finish closing
  await withDeadline(history?.close() ?? Promise.resolve(), FLUSH_BOUND_MS, 'closing the history').catch(() => {});
  disk?.unmount();
});

const flush = () => withDeadline(history.flush(), FLUSH_BOUND_MS, 'a history flush');

test('embedded history on a disk that fills: flushes fail within their deadline, then resume with nothing lost', async () => {
  assert.equal(await flush(), true, 'the store opens and writes');
  disk.fill(LEFT_FREE_BYTES);

  let recorded = 0;
  let failedAt: number | undefined;
  for (let round = 0; round < MAX_ROUNDS && failedAt === undefined; round++) {
    for (let i = 0; i < EVENTS_PER_ROUND; i++) {
      history.recordEvent({ at: new Date(), kind: 'drain', pool: 'web', worker: `web-${recorded++}`, reason: 'x'.repeat(300) });
    }
    if (!(await flush())) failedAt = round;
  }
  assert.notEqual(failedAt, undefined, `the disk filled up (${disk.freeBytes()} bytes free after ${recorded} events)`);
  assert.equal(history.status().healthy, false);
  assert.equal(await flush(), false, 'a second flush on the full disk fails too, within its deadline');

  disk.unfill();
  let resumed = false;
  for (let attempt = 0; attempt < 20 && !resumed; attempt++) {
    resumed = await flush();
    if (!resumed) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.equal(resumed, true, `writes resume once there is room: ${JSON.stringify(history.status())}`);
  const status = history.status();
  assert.equal(status.pending, 0);
  assert.equal(status.dropped, 0);
  assert.equal((await history.events({ limit: recorded + 10 })).length, recorded, 'every event recorded is stored once');
});
