import pg from 'pg';

const SERVER_URL = process.env.SUPERVISOR_TEST_DATABASE_SERVER ?? 'postgres://postgres@127.0.0.1:5432';
const DATABASE = 'switchyard_supervisor_test';

/**
 * The supervisor's history in a PostgreSQL test database of its own when a server answers (fast
 * to open), else {} and the embedded default (slower to start). Returns env for the supervisor app.
 */
export async function historyDatabaseEnv(): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: `${SERVER_URL}/postgres`, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const exists = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`create database ${DATABASE}`).catch(() => {}); // a parallel run may have created it
    return { DATABASE_URL: `${SERVER_URL}/${DATABASE}` };
  } catch {
    return {};
  } finally {
    await client.end().catch(() => {});
  }
}
