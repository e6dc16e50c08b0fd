// @ts-check
/**
 * The embedded database's thread: PGlite runs its WASM synchronously, for seconds at a time on a
 * first start (initdb), so it lives here rather than on the supervisor's event loop.
 *
 * Plain JavaScript on purpose: the same file runs under `tsx` (development, tests) and beside the
 * esbuild bundle (production, dist/supervisor.mjs resolves it through PROJECT_ROOT), with no
 * TypeScript loader in the thread (Node 20 cannot register tsx's hooks inside a worker).
 * Protocol: embedded-protocol.ts; the client side is embedded-db.ts.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

/** @type {{ dir: string, options: import('@electric-sql/pglite').PGliteOptions }} */
const { dir, options } = workerData;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

/** PostgreSQL's own last log lines: PGlite's "failed to initialize properly" says nothing of why. */
const LOG_LINES_KEPT = 20;
/** @type {string[]} */
const recentLog = [];
const keepLogLine = (/** @type {string} */ line) => {
  recentLog.push(line);
  if (recentLog.length > LOG_LINES_KEPT) recentLog.shift();
  return false;
};

/** @type {Promise<{ db: PGlite, created: boolean }> | undefined} */
let opening;
function open() {
  const p = (opening ??= (async () => {
    await mkdir(dir, { recursive: true });
    const created = !existsSync(path.join(dir, 'PG_VERSION'));
    recentLog.length = 0;
    try {
      return { db: await PGlite.create(dir, { ...options, onStdout: keepLogLine, onStderr: keepLogLine }), created };
    } catch (err) {
      if (err instanceof Error && recentLog.length > 0) err.message += `; PostgreSQL's last log lines:\n${recentLog.join('\n')}`;
      throw err;
    }
  })());
  p.catch(() => {
    if (opening === p) opening = undefined;
  });
  return p;
}

/** Own primitive fields (PostgreSQL's `code`, `severity`, `detail`, ...) travel with the message. */
function serializeError(/** @type {unknown} */ err) {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), fields: {} };
  /** @type {Record<string, string | number | boolean>} */
  const fields = {};
  for (const [k, v] of Object.entries(err)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields[k] = v;
  }
  return { name: err.name, message: err.message, stack: err.stack, fields };
}

/** @param {{ id: number, op: string, sql?: string, params?: unknown[] }} req */
async function handle(req) {
  if (req.op === 'close') {
    const db = await opening?.catch(() => undefined);
    opening = undefined;
    await db?.db.close();
    return undefined;
  }
  const { db, created } = await open();
  switch (req.op) {
    case 'open':
      return { created };
    case 'query': {
      const res = await db.query(String(req.sql), req.params);
      return { rows: res.rows, count: res.affectedRows ?? 0 };
    }
    case 'exec':
      await db.exec(String(req.sql));
      return undefined;
    default:
      throw new Error(`unknown request ${req.op}`);
  }
}

port.on('message', (req) => {
  handle(req).then(
    (result) => {
      try {
        port.postMessage({ id: req.id, ok: true, result });
      } catch (err) {
        // A value structured clone cannot carry (none of the history's column types is one).
        port.postMessage({ id: req.id, ok: false, error: serializeError(err) });
      }
    },
    (err) => port.postMessage({ id: req.id, ok: false, error: serializeError(err) }),
  );
});
