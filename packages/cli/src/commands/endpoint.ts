// url ID [--port P] · token ID --ports 8080[,9000-9100|all] [--ttl 15m]: reaching a MicroVM's endpoint.
import { durationSeconds, UsageError } from '../args.js';
import { connect } from '../client.js';
import type { CliCommand } from '../command.js';

function port(text: string): number {
  const port = Number(text);
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new UsageError('--port must be 1-65535');
  return port;
}

interface PortSet {
  allowedPorts?: number[];
  allowedPortRanges?: Array<{ start: number; end: number }>;
  allPorts?: boolean;
}

/** `8080,9000-9100` (ports and inclusive ranges) or `all`. */
function ports(text: string): PortSet {
  if (text.trim() === 'all') return { allPorts: true };
  const set: Required<Omit<PortSet, 'allPorts'>> = { allowedPorts: [], allowedPortRanges: [] };
  for (const item of text.split(',').map((p) => p.trim())) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item);
    if (!m) throw new UsageError(`--ports: "${item}" is not a port, a range (9000-9100) or "all"`);
    if (m[2] === undefined) set.allowedPorts.push(Number(m[1]));
    else set.allowedPortRanges.push({ start: Number(m[1]), end: Number(m[2]) });
  }
  return {
    ...(set.allowedPorts.length > 0 ? { allowedPorts: set.allowedPorts } : {}),
    ...(set.allowedPortRanges.length > 0 ? { allowedPortRanges: set.allowedPortRanges } : {}),
  };
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
    .usage('ID --ports 8080[,9000-9100|all] [--ttl 15m] [--json]')
    .argument('<ID>', 'the MicroVM')
    .option('--ports <list>', 'the guest ports it opens: ports and ranges, comma-separated, or all', ports, {
      allowedPorts: [8080],
    })
    .option('--ttl <duration>', 'how long it works (15m)', durationSeconds('--ttl'))
    .option('--json', 'print {token, expiresAt}')
    .handle<{ ports: PortSet; ttl?: number; json?: boolean }>(async ({ args: [id], options }) => {
      const token = await (await connect().microvms.get(id)).createAuthToken({
        ...options.ports,
        ttlSeconds: options.ttl,
      });
      process.stdout.write(
        (options.json ? JSON.stringify({ token: token.token, expiresAt: token.expiresAt }) : token.token) + '\n',
      );
      return 0;
    });
}
