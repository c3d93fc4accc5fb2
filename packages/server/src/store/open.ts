// Which database: Postgres when a postgres:// URL is configured, else SQLite in the data dir.
import path from 'node:path';
import { PostgresDriver } from './postgres-driver.js';
import { SqliteDriver } from './sqlite-driver.js';
import { SqlStore } from './sql-store.js';

export function openStore(opts: { databaseUrl: string | null; dataDir: string }): Promise<SqlStore> {
  if (opts.databaseUrl) return SqlStore.open(new PostgresDriver(opts.databaseUrl));
  return SqlStore.open(new SqliteDriver(path.join(opts.dataDir, 'capsule.db')));
}
