// The little a store needs from a SQL database. Queries are written once, with $1-style placeholders,
// and run unchanged on SQLite and Postgres; `dialect` covers the one place they differ (JSON lookups).
export type Row = Record<string, unknown>;

export interface SqlExecutor {
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Rows changed by an INSERT/UPDATE/DELETE. */
  run(sql: string, params?: unknown[]): Promise<number>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  /** `fn` in one transaction, its statements issued through `tx`. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
