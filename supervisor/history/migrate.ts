import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../../lib/config.ts';
import type { Db } from './db.ts';

// Through PROJECT_ROOT, not import.meta.url: bundled into dist/supervisor.mjs, this module's URL is the bundle's.
const MIGRATIONS_DIR = pathToFileURL(path.join(PROJECT_ROOT, 'supervisor', 'history', 'migrations') + path.sep);

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** `NNN_name.sql` files in version order. */
export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f));
  const migrations = await Promise.all(
    files.map(async (file) => ({
      version: Number.parseInt(file, 10),
      name: file.replace(/\.sql$/, ''),
      sql: await readFile(new URL(file, dir), 'utf8'),
    })),
  );
  return migrations.sort((a, b) => a.version - b.version);
}

/** Applies the migrations not yet recorded, all in one transaction; returns the names applied. */
export async function migrate(db: Db, migrations: Migration[]): Promise<string[]> {
  return db.transaction(async (q) => {
    // Serialises concurrent starts (two supervisors, overlapping restarts) on the same database.
    await q.query(`SELECT pg_advisory_xact_lock(hashtext('switchyard_schema_migrations'))`);
    await q.exec(`CREATE TABLE IF NOT EXISTS switchyard_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await q.query<{ version: number }>('SELECT version FROM switchyard_schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await q.exec(m.sql);
      await q.query('INSERT INTO switchyard_schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.name);
    }
    return applied;
  });
}
