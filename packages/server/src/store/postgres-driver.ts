// Postgres through node-postgres, a small pool. Selected by DATABASE_URL (postgres://…).
import pg from 'pg';
import { type ChangeChannel, storeUnavailable, type Row, type SqlDriver, type SqlExecutor } from './driver.js';
import { listenPostgres } from './pg-listener.js';

/** Connection-level failures (server down or restarting, socket gone), never a statement's own error. */
function isOutage(err: { code?: unknown; message?: unknown }): boolean {
  const code = String(err.code ?? '');
  return (
    ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', '57P01', '57P02', '57P03'].includes(
      code,
    ) ||
    code.startsWith('08') ||
    /Connection terminated|connection error|timeout exceeded when trying to connect|Client was closed/i.test(
      String(err.message ?? ''),
    )
  );
}

const unavailable = (err: unknown): never => {
  throw storeUnavailable(err, isOutage);
};

// COUNT/SUM come back as int8/numeric strings; every number this store keeps fits a double
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));

function executor(client: pg.Pool | pg.PoolClient): SqlExecutor {
  return {
    query: async (sql, params = []) =>
      ((await client.query(sql, params).catch(unavailable)) as pg.QueryResult).rows as Row[],
    run: async (sql, params = []) =>
      ((await client.query(sql, params).catch(unavailable)) as pg.QueryResult).rowCount ?? 0,
    exec: async (sql) => void (await client.query(sql).catch(unavailable)),
  };
}

export class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  readonly query: SqlExecutor['query'];
  readonly run: SqlExecutor['run'];
  readonly exec: SqlExecutor['exec'];

  readonly changes: ChangeChannel;

  constructor(connectionString: string) {
    // a database that does not answer fails a request in seconds (503), never holds it for good
    this.pool = new pg.Pool({ connectionString, max: 4, connectionTimeoutMillis: 5000, query_timeout: 30_000 });
    this.pool.on('error', () => undefined); // an idle client's broken connection is replaced on next use
    ({ query: this.query, run: this.run, exec: this.exec } = executor(this.pool));
    this.changes = {
      notify: async (channel, payload) => void (await this.query('SELECT pg_notify($1, $2)', [channel, payload])),
      listen: (channel, onPayload, onResumed) => listenPostgres(connectionString, channel, onPayload, onResumed),
    };
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch(unavailable);
    try {
      await client.query('BEGIN');
      const result = await fn(executor(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
