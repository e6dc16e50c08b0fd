import { after, before, describe, test } from 'node:test';
import { TcpRelay } from '../../helpers/tcp-relay.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import type { Db } from '../../../supervisor/history/db.ts';
import { createEmbeddedDb } from '../../../supervisor/history/embedded-db.ts';
import { loadMigrations, migrate } from '../../../supervisor/history/migrate.ts';
import { createPgDb } from '../../../supervisor/history/pg-db.ts';
import { writeBatch } from '../../../supervisor/history/queries.ts';
import { pendingEvent } from '../../../supervisor/history/records.ts';
import { openHistory, type FleetEvent, type HistoryOptions, type HistoryStore } from '../../../supervisor/history/store.ts';

const PG_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const MINUTE = 60_000;
const DAY = 86_400_000;

/** A pino logger whose records land in `lines`, so tests can count warnings. */
function captureLog() {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines, count: (msg: RegExp) => lines.filter((l) => msg.test(l.msg)).length };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A fresh schema per run, selected through the connection string, so runs never see each other's rows. */
async function freshSchema(): Promise<{ url: (base?: string) => string; drop: () => Promise<void> }> {
  const schema = `switchyard_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client(PG_URL);
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  return {
    url(base = PG_URL) {
      const u = new URL(base);
      u.searchParams.set('options', `-c search_path=${schema}`);
      return u.toString();
    },
    async drop() {
      const c = new pg.Client(PG_URL);
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

interface Backend {
  name: 'postgres' | 'embedded';
  /** Options that point a store at this backend's test location. */
  options: Pick<HistoryOptions, 'databaseUrl' | 'dataDir'>;
  rawDb(): Db;
  cleanup(): Promise<void>;
}

const backends: Record<Backend['name'], () => Promise<Backend>> = {
  async postgres() {
    const schema = await freshSchema();
    const dataDir = mkdtempSync(path.join(tmpdir(), 'switchyard-history-pg-'));
    return {
      name: 'postgres',
      options: { databaseUrl: schema.url(), dataDir },
      rawDb: () => createPgDb(schema.url(), 2_000, pino({ level: 'silent' })),
      async cleanup() {
        await schema.drop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
  async embedded() {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'switchyard-history-embedded-'));
    return {
      name: 'embedded',
      options: { dataDir },
      rawDb: () => createEmbeddedDb(path.join(dataDir, 'history-db')),
      async cleanup() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

function open(backend: Backend, extra: Partial<HistoryOptions> = {}): Promise<HistoryStore> {
  return openHistory({
    ...backend.options,
    retentionDays: 7,
    log: pino({ level: 'silent' }),
    flushIntervalMs: 50,
    ...extra,
  });
}

for (const name of ['postgres', 'embedded'] as const) {
  describe(`history store on ${name}`, () => {
    let backend: Backend;
    before(async () => {
      backend = await backends[name]();
    });
    after(() => backend?.cleanup());

    test('migrations apply once, in one table, whoever opens first', async () => {
      const db = backend.rawDb();
      try {
        const migrations = await loadMigrations();
        assert.deepEqual(
          migrations.map((m) => m.name),
          ['001_init', '002_event_uid', '003_lane_minutes_proxy'],
        );
        assert.deepEqual(await migrate(db, migrations), ['001_init', '002_event_uid', '003_lane_minutes_proxy']);
        assert.deepEqual(await migrate(db, migrations), []);
        const { rows } = await db.query<{ version: number }>('SELECT version FROM switchyard_schema_migrations ORDER BY version');
        assert.deepEqual(rows, [{ version: 1 }, { version: 2 }, { version: 3 }]);
      } finally {
        await db.close();
      }
      // A store opened on the migrated database neither re-applies nor fails.
      const store = await open(backend);
      assert.equal(store.status().healthy, true);
      assert.equal(store.status().backend, name);
      await store.close();
    });

    test('a batch sent again after its commit answer was lost stores each event once', async () => {
      const db = backend.rawDb();
      try {
        await migrate(db, await loadMigrations());
        const at = new Date(Date.UTC(2032, 0, 1));
        const batch = [
          pendingEvent({ at, kind: 'recycle', pool: 'web', worker: 'resent-0', reason: 'maxRequests' })!,
          pendingEvent({ at, kind: 'recycle', pool: 'web', worker: 'resent-1', reason: 'maxAge' })!,
        ];
        // What the store does when a connection is cut after the server committed: the batch goes out again.
        await db.transaction((q) => writeBatch(q, batch));
        await db.transaction((q) => writeBatch(q, batch));
        const { rows } = await db.query<{ worker: string }>(
          "SELECT worker FROM switchyard_events WHERE worker LIKE 'resent-%' ORDER BY worker",
        );
        assert.deepEqual(rows.map((row) => row.worker), ['resent-0', 'resent-1']);
      } finally {
        await db.query("DELETE FROM switchyard_events WHERE worker LIKE 'resent-%'"); // the later tests read every event
        await db.close();
      }
    });

    test('events: recorded, read back oldest first, filtered by since, newest kept by limit', async () => {
      const base = Date.UTC(2031, 0, 1);
      const store = await open(backend);
      try {
        const recorded: FleetEvent[] = [
          { at: new Date(base), kind: 'start', pool: 'web', worker: 'web-0' },
          { at: new Date(base + 1000), kind: 'ready', pool: 'web', worker: 'web-0' },
          { at: new Date(base + 2000), kind: 'recycle', pool: 'web', worker: 'web-0', reason: 'maxRequests', detail: { served: 1000, tags: ['a', 'b'] } },
          { at: new Date(base + 3000), kind: 'config' },
        ];
        for (const e of recorded) store.recordEvent(e);
        assert.equal(store.status().pending, 4);
        assert.equal(await store.flush(), true);
        assert.equal(store.status().pending, 0);

        assert.deepEqual(await store.events({ since: new Date(base) }), recorded);
        assert.deepEqual(await store.events({ since: new Date(base + 1500) }), recorded.slice(2));
        assert.deepEqual(await store.events({ since: new Date(base), limit: 2 }), recorded.slice(2));
      } finally {
        await store.close();
      }
    });

    test('lane minutes: truncated to the minute, a re-flush of a minute replaces it, filter by lane', async () => {
      const base = Date.UTC(2031, 1, 1);
      const store = await open(backend);
      try {
        const stat = { requests: 10, errors: 1, p50Ms: 2.5, p99Ms: 40.25, queuePeak: 3 };
        store.recordLaneMinute({ minute: new Date(base + 17_123), lane: 'git', ...stat });
        store.recordLaneMinute({ minute: new Date(base), lane: 'web', ...stat });
        store.recordLaneMinute({ minute: new Date(base + MINUTE), lane: 'web', ...stat });
        await store.flush();
        // The same minute again, in a later flush and twice within one batch: last one wins.
        store.recordLaneMinute({ minute: new Date(base + 5_000), lane: 'git', ...stat, requests: 20 });
        store.recordLaneMinute({ minute: new Date(base), lane: 'git', ...stat, requests: 25, errors: 4 });
        await store.flush();

        const all = await store.laneStats({ since: new Date(base) });
        assert.deepEqual(all, [
          { minute: new Date(base), lane: 'git', ...stat, requests: 25, errors: 4 },
          { minute: new Date(base), lane: 'web', ...stat },
          { minute: new Date(base + MINUTE), lane: 'web', ...stat },
        ]);
        assert.deepEqual(
          (await store.laneStats({ since: new Date(base), lane: 'web' })).map((s) => s.minute.getTime()),
          [base, base + MINUTE],
        );
        assert.deepEqual(await store.laneStats({ since: new Date(base + 2 * MINUTE) }), []);
      } finally {
        await store.close();
      }
    });

    test("two hosts' proxies record the same minute and lane: both rows kept, read back as one summed", async () => {
      const base = Date.UTC(2031, 1, 2);
      const store = await open(backend);
      try {
        store.recordLaneMinute({ minute: new Date(base), lane: 'clone', requests: 30, errors: 1, p50Ms: 10, p99Ms: 80, queuePeak: 2, proxy: 'a:8080' });
        store.recordLaneMinute({ minute: new Date(base), lane: 'clone', requests: 10, errors: 2, p50Ms: 30, p99Ms: 200, queuePeak: 5, proxy: 'b:8080' });
        await store.flush();
        // a re-flush of one proxy's minute replaces only its own row
        store.recordLaneMinute({ minute: new Date(base), lane: 'clone', requests: 50, errors: 1, p50Ms: 10, p99Ms: 80, queuePeak: 2, proxy: 'a:8080' });
        await store.flush();
        assert.deepEqual(await store.laneStats({ since: new Date(base), lane: 'clone' }), [
          { minute: new Date(base), lane: 'clone', requests: 60, errors: 3, p50Ms: (50 * 10 + 10 * 30) / 60, p99Ms: 200, queuePeak: 7 },
        ]);
        // gone again, so that the retention test's count of rows (read back summed) stays its own
        assert.ok((await store.prune(new Date(base + 400 * DAY))) >= 2);
      } finally {
        await store.close();
      }
    });

    test('records without a usable timestamp are ignored; bad numbers are clamped', async () => {
      const base = Date.UTC(2031, 2, 1);
      const store = await open(backend);
      try {
        store.recordEvent({ at: new Date('nope'), kind: 'crash' });
        store.recordLaneMinute({ minute: new Date(NaN), lane: 'x', requests: 1, errors: 0, p50Ms: 1, p99Ms: 1, queuePeak: 0 });
        assert.equal(store.status().pending, 0);
        store.recordLaneMinute({ minute: new Date(base), lane: 'odd', requests: 2.6, errors: -1, p50Ms: NaN, p99Ms: Infinity, queuePeak: 1e12 });
        assert.equal(await store.flush(), true);
        assert.deepEqual(await store.laneStats({ since: new Date(base) }), [
          { minute: new Date(base), lane: 'odd', requests: 3, errors: 0, p50Ms: 0, p99Ms: 0, queuePeak: 2 ** 31 - 1 },
        ]);
      } finally {
        await store.close();
      }
    });

    test('retention: prune deletes rows older than retentionDays, keeps the rest', async () => {
      const now = Date.UTC(2031, 5, 30);
      const store = await open(backend, { retentionDays: 3 });
      try {
        const stat = { lane: 'prune', requests: 1, errors: 0, p50Ms: 1, p99Ms: 1, queuePeak: 0 };
        for (const ageDays of [10, 4, 2, 0]) {
          store.recordEvent({ at: new Date(now - ageDays * DAY), kind: 'stop', reason: `age ${ageDays}` });
          store.recordLaneMinute({ minute: new Date(now - ageDays * DAY), ...stat });
        }
        await store.flush();
        // Earlier tests' rows (2031-01 .. 2031-03) are past retention as well.
        const cutoff = now - 3 * DAY;
        const expired =
          (await store.events({ limit: 1e6 })).filter((e) => e.at.getTime() < cutoff).length +
          (await store.laneStats({ since: new Date(0) })).filter((s) => s.minute.getTime() < cutoff).length;
        assert.ok(expired >= 4);
        assert.equal(await store.prune(new Date(now)), expired);
        assert.deepEqual(
          (await store.events({})).map((e) => e.reason),
          ['age 2', 'age 0'],
        );
        assert.equal((await store.laneStats({ since: new Date(0) })).length, 2);
        assert.equal(await store.prune(new Date(now)), 0);
      } finally {
        await store.close();
      }
    });

    test('close flushes what is buffered; a reopened store sees it', async () => {
      const at = new Date(Date.UTC(2031, 6, 1));
      const first = await open(backend, { flushIntervalMs: 60_000 });
      first.recordEvent({ at, kind: 'drain', worker: 'web-1' });
      await first.close();
      first.recordEvent({ at, kind: 'drain', worker: 'after-close' });
      const second = await open(backend);
      try {
        assert.deepEqual(await second.events({ since: at }), [{ at, kind: 'drain', worker: 'web-1' }]);
      } finally {
        await second.close();
      }
    });
  });
}

describe('embedded store runs PGlite off the event loop', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'switchyard-history-thread-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('first open (initdb, migrations) keeps the event loop responsive', async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    delay.enable();
    const started = performance.now();
    const store = await open({ name: 'embedded', options: { dataDir } } as Backend);
    const elapsedMs = performance.now() - started;
    delay.disable();
    clearInterval(ticker);
    try {
      assert.equal(store.status().healthy, true);
      const maxMs = delay.max / 1e6;
      // PGlite on the main thread: a handful of ticks over 5-20 s and multi-second stalls.
      // Generous bounds: the machine may be busy with other work.
      assert.ok(maxMs < 500, `max event-loop delay ${maxMs.toFixed(0)} ms`);
      assert.ok(ticks >= (elapsedMs / 10) * 0.3, `${ticks} ticks of 10 ms in ${elapsedMs.toFixed(0)} ms`);
      store.recordEvent({ at: new Date(), kind: 'start' });
      assert.equal(await store.flush(), true);
      assert.equal((await store.events({})).length, 1);
    } finally {
      await store.close();
    }
  });

  test('errors cross the thread with their SQLSTATE; a closed database refuses statements instead of reopening', async () => {
    const db = createEmbeddedDb(path.join(dataDir, 'history-db'));
    try {
      await assert.rejects(db.query('SELEC 1'), (err: Error & { code?: string }) => err.code === '42601' && /syntax/.test(err.message));
      await assert.rejects(
        db.transaction(async (q) => {
          await q.query('CREATE TABLE switchyard_tx_probe (x int)');
          await q.query('SELECT 1/0');
        }),
        (err: Error & { code?: string }) => err.code === '22012',
      );
      // Rolled back: the table from the failed transaction does not exist.
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'switchyard_tx_probe'`);
      assert.deepEqual(rows, [{ n: 0 }]);
      await db.close();
      // A late statement (an API read during shutdown) would otherwise start a thread that holds the directory.
      await assert.rejects(db.query('SELECT 1 AS one'), /history database is closed/);
      const reopened = createEmbeddedDb(path.join(dataDir, 'history-db'));
      assert.deepEqual((await reopened.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
      await reopened.close();
    } finally {
      await db.close();
    }
  });

  test('a data directory PostgreSQL cannot start on: the error carries its own reason', async () => {
    // A cluster of its own, created and closed, then its pg_control overwritten.
    const broken = path.join(dataDir, 'broken-db');
    const created = createEmbeddedDb(broken);
    await created.query('SELECT 1');
    await created.close();
    writeFileSync(path.join(broken, 'global', 'pg_control'), Buffer.alloc(8192, 7));
    const db = createEmbeddedDb(broken);
    try {
      await assert.rejects(db.query('SELECT 1'), (err: Error) => /failed to initialize/.test(err.message) && /FATAL: +database files are incompatible/.test(err.message));
    } finally {
      await db.close();
    }
  });
});

/** Stands between the store and PostgreSQL so a test can cut the database off without stopping it. */
/** The relay's URL for a connection string: same database and options, the relay's port. */
function through(relay: TcpRelay, schemaUrl: string): string {
  const url = new URL(schemaUrl);
  url.port = String(relay.port);
  return url.toString();
}

describe('history store through a PostgreSQL outage', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'switchyard-history-outage-'));
  before(async () => {
    schema = await freshSchema();
  });
  after(async () => {
    await schema?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const openThrough = (databaseUrl: string, log: pino.Logger, extra: Partial<HistoryOptions> = {}) =>
    openHistory({
      databaseUrl,
      dataDir,
      retentionDays: 7,
      log,
      flushIntervalMs: 50,
      maxBackoffMs: 200,
      connectTimeoutMs: 1_000,
      ...extra,
    });

  test('mid-run outage: recording never throws, status turns unhealthy, one warning, everything arrives after', async () => {
    const fwd = new TcpRelay(Number(new URL(PG_URL).port || 5432), new URL(PG_URL).hostname);
    await fwd.start();
    const { log, count } = captureLog();
    const store = await openThrough(through(fwd, schema.url()), log);
    const since = new Date();
    let recorded = 0;
    // The fleet keeps working throughout: an event every 10 ms, as routing and recycling would.
    const recorder = setInterval(() => {
      store.recordEvent({ at: new Date(), kind: 'recycle', worker: `w${recorded}`, reason: 'maxRequests' });
      recorded++;
    }, 10);
    try {
      await waitFor('first events written', () => recorded >= 10 && store.status().pending === 0);
      assert.equal(store.status().healthy, true);

      await fwd.cut();
      await waitFor('store notices the outage', () => !store.status().healthy);
      const atCut = recorded;
      await waitFor('events buffered during the outage', () => recorded >= atCut + 30);
      const down = store.status();
      assert.equal(down.healthy, false);
      assert.ok(down.pending >= 30, `pending ${down.pending}`);
      assert.match(down.lastError ?? '', /./);
      await assert.rejects(store.events({ since }));
      assert.equal(count(/database unavailable/), 1, 'warned once per outage, not once per retry');

      await fwd.start(); // same port
      await waitFor('store recovers', () => store.status().healthy);
      clearInterval(recorder);
      assert.equal(await store.flush(), true);
      const events = await store.events({ since, limit: 100_000 });
      assert.equal(events.length, recorded);
      assert.deepEqual(
        events.map((e) => e.worker),
        Array.from({ length: recorded }, (_, i) => `w${i}`),
      );
      assert.equal(store.status().dropped, 0);
      assert.equal(count(/reachable again/), 1);
    } finally {
      clearInterval(recorder);
      await store.close();
      await fwd.cut();
    }
  });

  test('unreachable at start: open does not fail; the buffer is bounded (oldest dropped); schema and data arrive later', async () => {
    const fwd = new TcpRelay(Number(new URL(PG_URL).port || 5432), new URL(PG_URL).hostname);
    await fwd.start();
    await fwd.cut(); // a port that refuses connections
    const { log } = captureLog();
    // A fresh schema the store has never migrated: the migrations must run on reconnect.
    const late = await freshSchema();
    const store = await openThrough(through(fwd, late.url()), log, { bufferLimit: 5 });
    try {
      assert.equal(store.status().healthy, false);
      const at = new Date(Date.UTC(2032, 0, 1));
      for (let i = 0; i < 8; i++) store.recordEvent({ at: new Date(at.getTime() + i), kind: 'crash', worker: `w${i}` });
      assert.deepEqual(
        [store.status().pending, store.status().dropped],
        [5, 3],
      );
      await fwd.start();
      await waitFor('store recovers', () => store.status().healthy && store.status().pending === 0);
      assert.deepEqual(
        (await store.events({ since: at })).map((e) => e.worker),
        ['w3', 'w4', 'w5', 'w6', 'w7'],
      );
    } finally {
      await store.close();
      await fwd.cut();
      await late.drop();
    }
  });
});
