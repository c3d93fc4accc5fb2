// SQLite through better-sqlite3 (v12; v13 crashes Node 20): WAL, fully synchronous commits.
import { Mutex } from 'async-mutex';
import Database from 'better-sqlite3';
import { storeUnavailable, type Row, type SqlDriver, type SqlExecutor } from './driver.js';

/** The file cannot be used now (locked past the busy timeout, an I/O error, a full disk), not a bad statement. */
const isOutage = (err: { code?: unknown }): boolean =>
  /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY)/.test(String(err.code ?? ''));

function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw storeUnavailable(err, isOutage);
  }
}

/** `$n` placeholders → `?`, with the parameters reordered (and repeated) to match. */
function positional(sql: string, params: unknown[]): [string, unknown[]] {
  const ordered: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    ordered.push(params[Number(n) - 1]);
    return '?';
  });
  return [text, ordered.map((value) => (typeof value === 'boolean' ? Number(value) : value))];
}

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly transactions = new Mutex();

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
  }

  /** Statements run at once: a transaction's own (it holds the connection), or when none is open. */
  private readonly now: SqlExecutor = {
    query: async (sql, params = []) => {
      const [text, values] = positional(sql, params);
      return guarded(() => this.db.prepare(text).all(...values) as Row[]);
    },
    run: async (sql, params = []) => {
      const [text, values] = positional(sql, params);
      return guarded(() => this.db.prepare(text).run(...values).changes);
    },
    exec: async (sql) => {
      guarded(() => this.db.exec(sql));
    },
  };

  /**
   * A statement from outside a transaction waits until none is open: `fn` awaits between its statements, and one
   * run on the connection meanwhile would join that transaction (and be lost with its rollback).
   */
  private async idle(): Promise<void> {
    while (this.transactions.isLocked()) await this.transactions.waitForUnlock();
  }

  async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    await this.idle();
    return this.now.query(sql, params);
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    await this.idle();
    return this.now.run(sql, params);
  }

  async exec(sql: string): Promise<void> {
    await this.idle();
    return this.now.exec(sql);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    // one connection, one transaction at a time: another begun meanwhile would fail ("cannot start a transaction
    // within a transaction"), so they queue; its statements go through `tx`, everyone else's wait (idle)
    return this.transactions.runExclusive(async () => {
      guarded(() => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const result = await fn(this.now);
        guarded(() => this.db.exec('COMMIT'));
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
