// Postgres through node-postgres, a small pool. Selected by DATABASE_URL (postgres://…).
import pg from 'pg';
import type { Row, SqlDriver, SqlExecutor } from './driver.js';

// COUNT/SUM come back as int8/numeric strings; every number this store keeps fits a double
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));

function executor(client: pg.Pool | pg.PoolClient): SqlExecutor {
  return {
    query: async (sql, params = []) => (await client.query(sql, params)).rows as Row[],
    run: async (sql, params = []) => (await client.query(sql, params)).rowCount ?? 0,
    exec: async (sql) => void (await client.query(sql)),
  };
}

export class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  readonly query: SqlExecutor['query'];
  readonly run: SqlExecutor['run'];
  readonly exec: SqlExecutor['exec'];

  constructor(connectionString: string) {
    this.pool = new pg.Pool({ connectionString, max: 4 });
    this.pool.on('error', () => undefined); // an idle client's broken connection is replaced on next use
    ({ query: this.query, run: this.run, exec: this.exec } = executor(this.pool));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
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
