/** The little SQL surface the history store needs, implemented over `pg` and over PGlite. */
export interface QueryResult<R> {
  rows: R[];
  /** Rows inserted, updated or deleted. */
  count: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Several statements, no parameters. */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly backend: 'postgres' | 'embedded';
  transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
