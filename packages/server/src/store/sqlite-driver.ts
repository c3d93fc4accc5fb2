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

  async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    const [text, values] = positional(sql, params);
    return guarded(() => this.db.prepare(text).all(...values) as Row[]);
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    const [text, values] = positional(sql, params);
    return guarded(() => this.db.prepare(text).run(...values).changes);
  }

  async exec(sql: string): Promise<void> {
    guarded(() => this.db.exec(sql));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    // one connection, one transaction at a time: `fn` awaits between its statements, and another transaction
    // begun meanwhile would fail ("cannot start a transaction within a transaction"), so they queue
    return this.transactions.runExclusive(async () => {
      guarded(() => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const result = await fn(this);
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
