// url ID [--port P] · token ID --ports 8080[,9000] [--ttl 15m]: reaching a MicroVM's endpoint.
import { durationSeconds, UsageError } from '../args.js';
import { connect } from '../client.js';
import type { CliCommand } from '../command.js';

function port(text: string): number {
  const port = Number(text);
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new UsageError('--port must be 1-65535');
  return port;
}

function ports(text: string): number[] {
  return text.split(',').map((p) => {
    if (!/^\d{1,5}$/.test(p.trim())) throw new UsageError(`--ports: "${p}" is not a port`);
    return Number(p);
  });
}

export function defineEndpoint(program: CliCommand): void {
  program
    .command('url')
    .description("the URL of a guest port on the MicroVM's endpoint")
    .usage('ID [--port 8080] [--json]')
    .argument('<ID>', 'the MicroVM')
    .option('--port <port>', 'the guest port (default 8080)', port)
    .option('--json', 'print {url}')
    .handle<{ port?: number; json?: boolean }>(async ({ args: [id], options }) => {
      const url = (await connect().microvms.get(id)).url(options.port);
      process.stdout.write((options.json ? JSON.stringify({ url }) : url) + '\n');
      return 0;
    });
  program
    .command('token')
    .description('an endpoint auth token (send it as X-Capsule-Auth)')
    .usage('ID --ports 8080[,9000] [--ttl 15m] [--json]')
    .argument('<ID>', 'the MicroVM')
    .option('--ports <list>', 'the guest ports it opens, comma-separated', ports, [8080])
    .option('--ttl <duration>', 'how long it works (15m)', durationSeconds('--ttl'))
    .option('--json', 'print {token, expiresAt}')
    .handle<{ ports: number[]; ttl?: number; json?: boolean }>(async ({ args: [id], options }) => {
      const token = await (await connect().microvms.get(id)).createAuthToken({
        allowedPorts: options.ports,
        ttlSeconds: options.ttl,
      });
      process.stdout.write(
        (options.json ? JSON.stringify({ token: token.token, expiresAt: token.expiresAt }) : token.token) + '\n',
      );
      return 0;
    });
}
