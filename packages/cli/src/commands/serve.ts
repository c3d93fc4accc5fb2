// `capsule serve [--port 7070] [--data-dir .capsule] [--host 127.0.0.1] [--host-id ID] [--advertise URL]
// [--role all|host|api]`. A bad
// flag or CAPSULE_* variable is a usage error: one line naming it, exit 2.
import path from 'node:path';
import { HOST_ID } from '@capsule/protocol';
import { ConfigError, startServer } from '@capsule/server';
import { integer, UsageError } from '../args.js';
import type { CliCommand } from '../command.js';

interface ServeOptions {
  port?: number;
  host?: string;
  dataDir?: string;
  hostId?: string;
  advertise?: string;
  role?: 'all' | 'host' | 'api';
}

function role(value: string): 'all' | 'host' | 'api' {
  if (value !== 'all' && value !== 'host' && value !== 'api')
    throw new UsageError(`--role: "${value}" is not all, host or api`);
  return value;
}

function hostId(value: string): string {
  if (!HOST_ID.test(value))
    throw new UsageError(`--host-id: "${value}" is not 1-63 letters, digits, dots, dashes or underscores`);
  return value;
}

function advertiseUrl(value: string): string {
  if (!/^https?:\/\/[^\s/]+/.test(value))
    throw new UsageError(`--advertise: "${value}" is not a URL starting http:// or https://`);
  return value;
}

export function defineServe(program: CliCommand): void {
  program
    .command('serve')
    .description('run the API server (and the console, and the host agent)')
    .usage(
      '[--port 7070] [--data-dir .capsule] [--host 127.0.0.1] [--host-id ID] [--advertise URL] [--role all|host|api]',
    )
    .option('--port <port>', 'the API port (default 7070, or CAPSULE_PORT)', integer('--port'))
    .option('--data-dir <dir>', 'where data lives (default .capsule, or CAPSULE_DATA_DIR)')
    .option('--host <address>', 'the address to listen on (default 127.0.0.1, or CAPSULE_HOST)')
    .option(
      '--host-id <id>',
      "this host's id among servers on one database (default: host name, or CAPSULE_HOST_ID)",
      hostId,
    )
    .option('--advertise <url>', 'where other servers reach this one (or CAPSULE_ADVERTISE_URL)', advertiseUrl)
    .option(
      '--role <role>',
      'all (default); host: runs VMs for its cluster only; api: runs no VM, serves the API (or CAPSULE_ROLE)',
      role,
    )
    .handle<ServeOptions>(async ({ options }) => serve(options));
}

async function serve(options: ServeOptions): Promise<number> {
  const server = await startServer({
    port: options.port,
    host: options.host,
    dataDir: options.dataDir ? path.resolve(options.dataDir) : undefined,
    hostId: options.hostId,
    advertiseUrl: options.advertise,
    role: options.role,
  }).catch((err: unknown) => {
    throw err instanceof ConfigError ? new UsageError(err.message) : err;
  });
  process.stdout.write(
    server.config.role === 'api'
      ? `capsule serving on ${server.url} as api node ${server.config.hostId} (it runs no MicroVMs: its hosts do)\n`
      : `capsule serving on ${server.url} as host ${server.config.hostId} ` +
          `(accelerator ${server.accelerator.accelerator}: ${server.accelerator.reason})\n`,
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
