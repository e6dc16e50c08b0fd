import { mkdir } from 'node:fs/promises';
import type { PGlite, Transaction } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './db.ts';

function wrap(db: PGlite | Transaction): Queryable {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      const res = await db.query<R>(sql, params);
      return { rows: res.rows, count: res.affectedRows ?? 0 };
    },
    async exec(sql: string) {
      await db.exec(sql);
    },
  };
}

/** PGlite (Postgres compiled to WASM, in-process) on `dir`; opened on first use, reopened after a failed open. */
export function createEmbeddedDb(dir: string): Db {
  let opening: Promise<PGlite> | undefined;
  const open = (): Promise<PGlite> => {
    opening ??= (async () => {
      await mkdir(dir, { recursive: true });
      // Loaded only here so a fleet on external PostgreSQL never pays for the WASM module.
      const { PGlite } = await import('@electric-sql/pglite');
      return PGlite.create(dir);
    })();
    opening.catch(() => (opening = undefined));
    return opening;
  };

  return {
    backend: 'embedded',
    query: async (sql, params) => wrap(await open()).query(sql, params),
    exec: async (sql) => wrap(await open()).exec(sql),
    transaction: async (fn) => (await open()).transaction((tx) => fn(wrap(tx))),
    async close() {
      if (!opening) return;
      const db = await opening.catch(() => undefined);
      opening = undefined;
      await db?.close();
    },
  };
}
