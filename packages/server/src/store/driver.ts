// The little a store needs from a SQL database. Queries are written once, with $1-style placeholders,
// and run unchanged on SQLite and Postgres; `dialect` covers the one place they differ (JSON lookups).
import { CapsuleError, ErrorCode } from '@capsule/protocol';
export type Row = Record<string, unknown>;

export interface SqlExecutor {
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Rows changed by an INSERT/UPDATE/DELETE. */
  run(sql: string, params?: unknown[]): Promise<number>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** What a driver offers for changes other servers on the database make (Postgres NOTIFY/LISTEN). */
export interface ChangeChannel {
  notify(channel: string, payload: string): Promise<void>;
  /**
   * Hear `channel`'s payloads until the returned stop; `onResumed`: heard again after a time it could not hear (from
   * `lostAtMs`), whose payloads are lost.
   */
  listen(
    channel: string,
    onPayload: (payload: string) => void,
    onResumed?: (lostAtMs: number) => void,
  ): () => Promise<void>;
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  /** Changes told to the other servers on the database (Postgres NOTIFY/LISTEN); absent: no other server. */
  readonly changes?: ChangeChannel;
  /** `fn` in one transaction, its statements issued through `tx`. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * A driver error that means "the database cannot be reached now" (not "this statement is wrong") becomes
 * STORE_UNAVAILABLE (503): the API says so and callers retry; nothing else in the server changes.
 */
export function storeUnavailable(
  err: unknown,
  isOutage: (err: { code?: unknown; message?: unknown }) => boolean,
): unknown {
  if (err instanceof CapsuleError || typeof err !== 'object' || err === null || !isOutage(err as { code?: unknown }))
    return err;
  return new CapsuleError(ErrorCode.STORE_UNAVAILABLE, `the database is unavailable: ${(err as Error).message}`, {
    cause: err,
  });
}

/** `$from, $from+1, …`: `count` numbered parameters, for a list of values (`IN (…)`, a row of `VALUES (…)`). */
export const placeholders = (count: number, from = 1): string =>
  Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');
