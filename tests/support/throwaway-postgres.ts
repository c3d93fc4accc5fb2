// A private Postgres cluster for tests: initdb into a temp dir, listen only on a unix socket there,
// fsync off. Run as the `postgres` user when we are root (initdb refuses root). Stopped and removed by stop().
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

function binDir(): string {
  const versions = fs.existsSync('/usr/lib/postgresql')
    ? fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))
    : [];
  for (const v of versions)
    if (fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`)) return `/usr/lib/postgresql/${v}/bin`;
  throw new Error(
    'Postgres server binaries not found under /usr/lib/postgresql (scripts/setup.sh installs postgresql)',
  );
}

export interface ThrowawayPostgres {
  /** A URL for a new, empty database in this cluster. */
  createDatabase(name: string): Promise<string>;
  /** Stop the server (fast shutdown: connections are cut), keeping its data; start it again. */
  pause(): void;
  resume(): void;
  stop(): void;
}

export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const bin = binDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-pg-'));
  const data = path.join(dir, 'data');
  const port = 20_000 + Math.floor(Math.random() * 30_000);
  const asUser: ExecFileSyncOptions = { stdio: 'pipe' };
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    fs.chownSync(dir, uid, gid);
    Object.assign(asUser, { uid, gid });
  }
  const stop = (): void => {
    try {
      execFileSync(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], asUser);
    } catch {
      // not running
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const options = `-k ${dir} -p ${port} -c listen_addresses= -c fsync=off -c synchronous_commit=off`;
  const start = (): void =>
    void execFileSync(
      path.join(bin, 'pg_ctl'),
      ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start'],
      asUser,
    );
  try {
    execFileSync(
      path.join(bin, 'initdb'),
      ['-D', data, '-A', 'trust', '-U', 'capsule', '--no-sync', '-E', 'UTF8'],
      asUser,
    );
    start();
  } catch (err) {
    const log = fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8') : '';
    stop();
    throw new Error(`could not start a throwaway Postgres: ${(err as Error).message}\n${log}`);
  }
  const url = (db: string): string =>
    `postgresql://capsule@localhost/${db}?host=${encodeURIComponent(dir)}&port=${port}`;
  return {
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name.replace(/[^a-z0-9_]/g, '_')}"`);
      } finally {
        await client.end();
      }
      return url(name.replace(/[^a-z0-9_]/g, '_'));
    },
    pause: () => void execFileSync(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], asUser),
    resume: start,
    stop,
  };
}
