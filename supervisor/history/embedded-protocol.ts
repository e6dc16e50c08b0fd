/** Messages between the history store (embedded-db.ts) and its PGlite thread (embedded-worker.mjs). */
import type { PGliteOptions } from '@electric-sql/pglite';

/** The thread's `workerData`. */
export interface WorkerInit {
  dir: string;
  options: PGliteOptions;
}

export type RequestBody =
  /** Opens the database (initdb on a first start); `{ created }` tells whether it was just initialised. */
  | { op: 'open' }
  | { op: 'query'; sql: string; params?: unknown[] }
  | { op: 'exec'; sql: string }
  /** Closes PGlite; the thread stays until terminated. */
  | { op: 'close' };

export type Request = RequestBody & { id: number };

export type Response = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** Own primitive fields such as PostgreSQL's `code` (SQLSTATE), `severity`, `detail`, `constraint`. */
  fields: Record<string, string | number | boolean>;
}

export function deserializeError(e: SerializedError): Error {
  const err = Object.assign(new Error(e.message), e.fields);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}
