import pg from 'pg';
import { discoverRepo, discoverRepos, type DiscoveredRepo } from './discover.ts';
import type { RegistryStatus, RepoRecord, RepoRegistry } from './types.ts';

// The registry table is keyed by (root, name) so that several repos directories (hosts, test
// runs) can share one database. The filesystem stays the truth about which repositories exist;
// the table adds what the filesystem cannot say cheaply (the last head seen) and is what the
// pages read, as Kallithea reads its repository table.

const SCHEMA = `
CREATE TABLE IF NOT EXISTS public.switchyard_repos (
  root text NOT NULL,
  name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('git', 'hg')),
  description text NOT NULL DEFAULT '',
  last_head text,
  last_seen_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (root, name)
)`;

interface Row {
  name: string;
  kind: 'git' | 'hg';
  description: string;
  last_head: string | null;
}

function toRecord(row: Row): RepoRecord {
  return { name: row.name, kind: row.kind, description: row.description, lastHead: row.last_head ?? undefined };
}

export interface PgRegistryTimeouts {
  /** to open a connection (a server that accepts but never answers hangs here) */
  connectTimeoutMs: number;
  /** per statement: the server cancels it (statement_timeout, a lock wait included) and the client gives up (query_timeout) */
  queryTimeoutMs: number;
}

export const DEFAULT_PG_TIMEOUTS: PgRegistryTimeouts = { connectTimeoutMs: 2000, queryTimeoutMs: 3000 };

export class PgRepoRegistry implements RepoRegistry {
  private readonly pool: pg.Pool;
  private ready?: Promise<void>;

  constructor(
    connectionString: string,
    private readonly root: string,
    timeouts: PgRegistryTimeouts = DEFAULT_PG_TIMEOUTS,
    onConnectionError: (error: Error) => void = () => {},
  ) {
    this.pool = new pg.Pool({
      connectionString,
      max: 2,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: timeouts.connectTimeoutMs,
      query_timeout: timeouts.queryTimeoutMs,
      statement_timeout: timeouts.queryTimeoutMs,
      keepAlive: true,
    });
    // An idle connection dies with its server (a restart ends every session); unheard, the pool's
    // 'error' event would take the worker down.
    this.pool.on('error', onConnectionError);
  }

  private async init(): Promise<void> {
    // concurrent CREATE TABLE IF NOT EXISTS from several workers can race on the catalog
    await this.pool.query(SCHEMA).catch(async (error: { code?: string }) => {
      if (error.code !== '23505' && error.code !== '42P07') throw error;
    });
  }

  private ensureReady(): Promise<void> {
    this.ready ??= this.init().catch((error) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  private async upsert(repos: DiscoveredRepo[]): Promise<void> {
    if (repos.length === 0) return;
    await this.pool.query(
      `INSERT INTO public.switchyard_repos (root, name, kind, description)
       SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[])
       ON CONFLICT (root, name) DO UPDATE SET kind = EXCLUDED.kind, description = EXCLUDED.description, updated_at = now()
       WHERE switchyard_repos.kind IS DISTINCT FROM EXCLUDED.kind OR switchyard_repos.description IS DISTINCT FROM EXCLUDED.description`,
      [this.root, repos.map((r) => r.name), repos.map((r) => r.kind), repos.map((r) => r.description)],
    );
  }

  async list(): Promise<RepoRecord[]> {
    await this.ensureReady();
    const repos = await discoverRepos(this.root);
    await this.upsert(repos);
    await this.pool.query('DELETE FROM public.switchyard_repos WHERE root = $1 AND NOT (name = ANY($2::text[]))', [
      this.root,
      repos.map((r) => r.name),
    ]);
    const result = await this.pool.query<Row>(
      'SELECT name, kind, description, last_head FROM public.switchyard_repos WHERE root = $1 ORDER BY name',
      [this.root],
    );
    return result.rows.map(toRecord);
  }

  async get(name: string): Promise<RepoRecord | undefined> {
    await this.ensureReady();
    const repo = await discoverRepo(this.root, name);
    if (!repo) {
      await this.pool.query('DELETE FROM public.switchyard_repos WHERE root = $1 AND name = $2', [this.root, name]);
      return undefined;
    }
    await this.upsert([repo]);
    const result = await this.pool.query<Row>(
      'SELECT name, kind, description, last_head FROM public.switchyard_repos WHERE root = $1 AND name = $2',
      [this.root, name],
    );
    return result.rows[0] && toRecord(result.rows[0]);
  }

  async recordHead(name: string, head: string): Promise<void> {
    await this.ensureReady();
    await this.pool.query(
      `UPDATE public.switchyard_repos SET last_head = $3, last_seen_at = now()
       WHERE root = $1 AND name = $2 AND last_head IS DISTINCT FROM $3`,
      [this.root, name, head],
    );
  }

  status(): RegistryStatus {
    return { backend: 'postgresql', degraded: false };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
