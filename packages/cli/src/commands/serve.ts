// `capsule serve [--port 7070] [--data-dir .capsule] [--host 127.0.0.1]`. A bad CAPSULE_* variable is a
// usage error: one line naming it, exit 2.
import path from 'node:path';
import { ConfigError, startServer } from '@capsule/server';
import { integer, UsageError } from '../args.js';
import type { CliCommand } from '../command.js';

interface ServeOptions {
  port?: number;
  host?: string;
  dataDir?: string;
}

export function defineServe(program: CliCommand): void {
  program
    .command('serve')
    .description('run the API server (and the console, and the host agent)')
    .usage('[--port 7070] [--data-dir .capsule] [--host 127.0.0.1]')
    .option('--port <port>', 'the API port (default 7070, or CAPSULE_PORT)', integer('--port'))
    .option('--data-dir <dir>', 'where data lives (default .capsule, or CAPSULE_DATA_DIR)')
    .option('--host <address>', 'the address to listen on (default 127.0.0.1, or CAPSULE_HOST)')
    .handle<ServeOptions>(async ({ options }) => serve(options));
}

async function serve(options: ServeOptions): Promise<number> {
  const server = await startServer({
    port: options.port,
    host: options.host,
    dataDir: options.dataDir ? path.resolve(options.dataDir) : undefined,
  }).catch((err: unknown) => {
    throw err instanceof ConfigError ? new UsageError(err.message) : err;
  });
  process.stdout.write(
    `capsule serving on ${server.url} (accelerator ${server.accelerator.accelerator}: ${server.accelerator.reason})\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.stdout.write('capsule: shutting down\n');
      void server.close().then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
