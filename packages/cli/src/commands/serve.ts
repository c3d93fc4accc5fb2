// `capsule serve [--port 7070] [--data-dir .capsule] [--host 127.0.0.1]`. A bad CAPSULE_* variable is a
// usage error: one line naming it, exit 2.
import path from 'node:path';
import { ConfigError, startServer } from '@capsule/server';
import { flag, parseArgs, parseInteger, UsageError } from '../args.js';

export async function serveCommand(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, { values: ['port', 'data-dir', 'host'], booleans: [] });
  const dataDir = flag(parsed, 'data-dir');
  const server = await startServer({
    port: parseInteger(flag(parsed, 'port'), '--port'),
    host: flag(parsed, 'host'),
    dataDir: dataDir ? path.resolve(dataDir) : undefined,
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
