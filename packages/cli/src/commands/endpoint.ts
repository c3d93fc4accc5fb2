// url ID [--port P] · token ID --ports 8080[,9000] [--ttl 15m]: reaching a MicroVM's endpoint.
import type { Capsule } from '@capsule/sdk';
import { flag, has, parseArgs, parseDurationSeconds, UsageError } from '../args.js';

export async function urlCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, { values: ['port'], booleans: ['json'] });
  const [id] = parsed.positionals;
  if (!id || parsed.positionals.length > 1) throw new UsageError('usage: capsule url ID [--port 8080]');
  const port = flag(parsed, 'port') === undefined ? undefined : Number(flag(parsed, 'port'));
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535))
    throw new UsageError('--port must be 1-65535');
  const url = (await capsule.microvms.get(id)).url(port);
  process.stdout.write((has(parsed, 'json') ? JSON.stringify({ url }) : url) + '\n');
  return 0;
}

export async function tokenCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, { values: ['ports', 'ttl'], booleans: ['json'] });
  const [id] = parsed.positionals;
  if (!id || parsed.positionals.length > 1)
    throw new UsageError('usage: capsule token ID --ports 8080[,9000] [--ttl 15m]');
  const ports = (flag(parsed, 'ports') ?? '8080').split(',').map((p) => {
    if (!/^\d{1,5}$/.test(p.trim())) throw new UsageError(`--ports: "${p}" is not a port`);
    return Number(p);
  });
  const ttl = flag(parsed, 'ttl');
  const token = await (await capsule.microvms.get(id)).createAuthToken({
    allowedPorts: ports,
    ttlSeconds: ttl ? parseDurationSeconds(ttl, '--ttl') : undefined,
  });
  process.stdout.write(
    (has(parsed, 'json') ? JSON.stringify({ token: token.token, expiresAt: token.expiresAt }) : token.token) + '\n',
  );
  return 0;
}
