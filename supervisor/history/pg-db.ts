import pg from 'pg';
import type { Logger } from '../../lib/log.ts';
import type { Db, Queryable, QueryResult } from './db.ts';

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      const res = await client.query(sql, params);
      return { rows: res.rows as R[], count: res.rowCount ?? 0 };
    },
    async exec(sql: string) {
      await client.query(sql);
    },
  };
}

export function createPgDb(connectionString: string, connectTimeoutMs: number, log: Logger, queryTimeoutMs = 30_000): Db {
  const pool = new pg.Pool({
    connectionString,
    max: 2,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: connectTimeoutMs,
    // A half-open connection (no RST) would otherwise hang a flush forever.
    query_timeout: queryTimeoutMs,
    keepAlive: true,
  });
  // Idle clients die with the server; without a listener that error would kill the process.
  // The flush loop reports the outage, so this stays at debug.
  pool.on('error', (err) => log.debug({ err: err.message }, 'history: idle postgres client error'));
  const onCheckedOutError = (err: Error) => log.debug({ err: err.message }, 'history: postgres client error');

  return {
    backend: 'postgres',
    ...wrap(pool),
    async transaction(fn) {
      const client = await pool.connect();
      // Between two queries of a transaction the client is neither idle nor busy, so neither the
      // pool's listener nor a pending query would catch a socket error.
      client.on('error', onCheckedOutError);
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const out = await fn(wrap(client));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        broken = err as Error;
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.off('error', onCheckedOutError);
        // Passing the error destroys the client instead of returning a possibly dead one to the pool.
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
