import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { PGliteOptions } from '@electric-sql/pglite';
import { PROJECT_ROOT } from '../../lib/config.ts';
import type { Db, Queryable, QueryResult } from './db.ts';
import { deserializeError, type RequestBody, type Response, type WorkerInit } from './embedded-protocol.ts';

/**
 * Written into the new cluster's postgresql.conf by initdb. PostgreSQL's defaults (128 MB shared
 * buffers) are sized for a server; the history needs a few MB, and every buffer PGlite touches
 * stays in the process's RSS (WASM memory never shrinks).
 */
const INITDB_PARAMS = ['-c', 'shared_buffers=16MB', '-c', 'wal_buffers=512kB'];

/** Resolved through PROJECT_ROOT, so it is found from the sources and from dist/supervisor.mjs alike. */
const WORKER_ENTRY = path.join(PROJECT_ROOT, 'supervisor', 'history', 'embedded-worker.mjs');

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
  /** Set once the thread has failed or exited: requests to it reject at once. */
  dead?: Error;
  /** Marks the thread dead and rejects everything waiting on it. */
  fail(err: Error): void;
}

export interface EmbeddedDbOptions {
  /** how long opening may take (initdb on a first start takes 5-20 s) */
  openTimeoutMs?: number;
  /** how long one statement may take before its thread is taken for wedged and ended */
  statementTimeoutMs?: number;
}

const CLOSE_TIMEOUT_MS = 10_000;

/**
 * PGlite (Postgres compiled to WASM) on `dir`, run in a worker thread so that its synchronous WASM
 * work (seconds of initdb on a first start) never stalls the caller's event loop. Opened on first
 * use; a thread that fails to open or dies is replaced on the next use. `close` ends the thread,
 * and every later statement is refused (as pg's Pool does after `end`).
 *
 * Every request has a deadline. PGlite can spin forever at full CPU: measured on a full disk,
 * when PostgreSQL needs a new 16 MB WAL segment and the disk has less than that, the statement
 * never returns (and freeing space does not help). A thread that misses its deadline is ended,
 * what waits on it fails, and the next statement opens the directory in a fresh thread
 * (PostgreSQL's crash recovery: the committed rows are kept).
 */
export function createEmbeddedDb(dir: string, options: EmbeddedDbOptions = {}): Db {
  const openTimeoutMs = options.openTimeoutMs ?? 120_000;
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  let opening: Promise<Thread> | undefined;
  let closed = false;
  let live: Thread | undefined;
  let nextId = 1;
  // One connection: a transaction's statements must not interleave with anyone else's.
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };

  function spawn(): Thread {
    const init: WorkerInit = { dir, options: { initDbStartParams: INITDB_PARAMS } satisfies PGliteOptions };
    const worker = new Worker(WORKER_ENTRY, {
      workerData: init,
      // Not the parent's flags: a tsx loader inherited into a thread breaks on Node 20.
      execArgv: [],
    });
    const t: Thread = {
      worker,
      pending: new Map(),
      fail(err: Error) {
        t.dead ??= err;
        if (live === t) {
          live = undefined;
          opening = undefined;
        }
        for (const p of t.pending.values()) p.reject(err);
        t.pending.clear();
      },
    };
    worker.on('message', (res: Response) => {
      const p = t.pending.get(res.id);
      if (!p) return;
      t.pending.delete(res.id);
      if (t.pending.size === 0) worker.unref();
      if (res.ok) p.resolve(res.result);
      else p.reject(deserializeError(res.error));
    });
    worker.on('error', (err) => t.fail(err));
    worker.on('exit', (code) => t.fail(new Error(`history database thread exited (code ${code})`)));
    // Only a request in flight keeps the process alive, as a socket would.
    worker.unref();
    return t;
  }

  function call<T>(t: Thread, req: RequestBody, timeoutMs: number): Promise<T> {
    if (t.dead) return Promise.reject(t.dead);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        t.fail(new Error(`history database thread gave no answer to ${req.op} within ${timeoutMs} ms; ended it`));
        void t.worker.terminate();
      }, timeoutMs);
      // The pending request refs the thread, which keeps the process (and so this timer) alive.
      timer.unref();
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      t.pending.set(id, { resolve: (v) => settle(() => resolve(v as T)), reject: (e) => settle(() => reject(e)) });
      if (t.pending.size === 1) t.worker.ref();
      t.worker.postMessage({ id, ...req });
    });
  }

  /** Closes PGlite (checkpoint, lock released) if the thread answers in time, then ends the thread. */
  async function stop(t: Thread): Promise<void> {
    try {
      await call(t, { op: 'close' }, CLOSE_TIMEOUT_MS);
    } finally {
      await t.worker.terminate();
    }
  }

  /** The thread with the database open, started on first use. */
  function thread(): Promise<Thread> {
    // A statement queued behind close must not open the directory again behind its closer's back.
    if (closed) return Promise.reject(new Error('history database is closed'));
    opening ??= (async () => {
      let t = spawn();
      try {
        const { created } = await call<{ created: boolean }>(t, { op: 'open' }, openTimeoutMs);
        if (created) {
          // initdb leaves hundreds of MB of WASM memory behind in its thread (a second PGlite
          // instance and the initdb module); a fresh thread opens the new cluster with a fraction.
          await stop(t);
          t = spawn();
          await call(t, { op: 'open' }, openTimeoutMs);
        }
      } catch (err) {
        void stop(t).catch(() => {});
        throw err;
      }
      live = t;
      return t;
    })();
    opening.catch(() => (opening = undefined));
    return opening;
  }

  /** Statements on one thread: a transaction must not continue on a replacement. */
  const on = (t: Thread): Queryable => ({
    query: <R>(sql: string, params?: unknown[]) => call<QueryResult<R>>(t, { op: 'query', sql, params }, statementTimeoutMs),
    exec: (sql: string) => call<void>(t, { op: 'exec', sql }, statementTimeoutMs),
  });

  return {
    backend: 'embedded',
    query: (sql, params) => exclusive(async () => on(await thread()).query(sql, params)),
    exec: (sql) => exclusive(async () => on(await thread()).exec(sql)),
    transaction: (fn) =>
      exclusive(async () => {
        const q = on(await thread());
        await q.exec('BEGIN');
        try {
          const out = await fn(q);
          await q.exec('COMMIT');
          return out;
        } catch (err) {
          await q.exec('ROLLBACK').catch(() => {});
          throw err;
        }
      }),
    close: () =>
      exclusive(async () => {
        closed = true;
        const pending = opening;
        opening = undefined;
        live = undefined;
        const t = await pending?.catch(() => undefined);
        if (t) await stop(t);
      }),
  };
}
