// Which database: Postgres when a postgres:// URL is configured, else SQLite in the data dir.
import fs from 'node:fs';
import path from 'node:path';
import { PostgresDriver } from './postgres-driver.js';
import { SqliteDriver } from './sqlite-driver.js';
import { SqlStore } from './sql-store.js';

export function openStore(opts: { databaseUrl: string | null; dataDir: string }): Promise<SqlStore> {
  if (opts.databaseUrl) return SqlStore.open(new PostgresDriver(opts.databaseUrl));
  const file = path.join(opts.dataDir, 'capsule.db');
  privateDatabaseFiles(file);
  return SqlStore.open(new SqliteDriver(file));
}

/**
 * The database holds tenants' environment variables and key hashes: root's alone. SQLite gives its WAL
 * and shared-memory files the mode of the database file, so the file is made 0600 before SQLite opens
 * it (and any from before this rule are tightened).
 */
function privateDatabaseFiles(file: string): void {
  fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      fs.chmodSync(f, 0o600);
    } catch {
      // not there (yet)
    }
  }
}
