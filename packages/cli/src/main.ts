// capsule — the command-line client (and `capsule serve`). Exit codes: 0 ok, 1 API/runtime error,
// 2 usage error; `exec` and `run --rm` exit with the guest command's code.
import { CapsuleError } from '@capsule/sdk';
import { UsageError } from './args.js';
import { connect } from './client.js';
import { streamExec, EXEC_FLAGS } from './commands/exec.js';
import { getCommand, listCommand, runCommand } from './commands/microvms.js';
import { serveCommand } from './commands/serve.js';
import { adminKeyCommand, keyCommand, tenantCommand } from './commands/tenants.js';
import { tokenCommand, urlCommand } from './commands/endpoint.js';
import { shellCommand } from './commands/shell.js';
import { cpCommand, logsCommand } from './commands/files.js';
import { imageCommand } from './commands/images.js';
import { networkCommand } from './commands/network.js';
import { parseArgs } from './args.js';

const USAGE = `usage: capsule <command> [options]
  serve [--port 7070] [--data-dir .capsule]     run the API server
  image create NAME (--zip app.zip | --dir DIR | --code-uri s3://b/k) [--runtime python] [--start CMD] [--port 8080]
  image ls | get NAME[:V] | logs NAME[:V] | rm NAME[:V]   MicroVM Images (built in a builder VM, app-ready snapshot)
  run IMAGE [--vcpus N] [--memory-mib M] [--max-duration 8h] [--idle 15m] [--no-auto-resume]
            [--egress none|all|LIST] [--deny LIST] [--env K=V] [--label K=V] [--json] [--quiet] [--rm -- CMD...]
  ls [--state S] [--label K=V] [--json]         list MicroVMs
  get ID [--json]                               show one MicroVM
  exec ID [--cwd D] [--env K=V] [--timeout 30s] [--no-stdin] -- CMD...
  cp LOCAL ID:/PATH | ID:/PATH LOCAL            copy a file in or out (streamed)
  logs ID                                       the MicroVM's serial console (kernel, init)
  shell ID                                      an interactive shell in the MicroVM (PTY over WebSocket)
  network set ID --egress none|all|LIST [--deny LIST]   change the egress policy (LIST: domains, *.wildcards, IPs, CIDRs)
  network log ID [--limit N] [--json]           DNS queries and flows out, allowed or denied, and the rule
  suspend ID | resume ID                        save to disk and stop / bring back exactly as it was
  terminate ID                                  stop and discard a MicroVM
  url ID [--port 8080]                          the URL of a guest port on the MicroVM's endpoint
  token ID --ports 8080[,9000] [--ttl 15m]      an endpoint auth token (send as X-Capsule-Auth)
  tenant create NAME [--max-microvms N] [--max-vcpus N] [--max-memory-mib M] [--max-storage-mib M] [--json]   (admin key)
  tenant ls | tenant quota ID [quota flags]     list tenants / change a tenant's quotas (admin key)
  tenant usage ID                               a tenant's quotas and what it holds now (admin key, or its own key)
  key create --tenant ID [--name N] [--json]    a new API key for a tenant, shown once (admin key)
  key ls --tenant ID | key revoke --tenant ID KEY_ID   list a tenant's keys / revoke one at once (admin key)
  admin-key rotate [--json]                     a new admin key; the old one stops working (admin key)
Environment: CAPSULE_URL (default http://127.0.0.1:7070), CAPSULE_API_KEY (default: <data dir>/admin-key)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(args);
    case 'run':
      return runCommand(connect(), args);
    case 'ls':
    case 'list':
      return listCommand(connect(), args);
    case 'get':
      return getCommand(connect(), args, 'get');
    case 'terminate':
    case 'rm':
      return getCommand(connect(), args, 'terminate');
    case 'suspend':
    case 'resume':
      return getCommand(connect(), args, command);
    case 'image':
    case 'images':
      return imageCommand(connect(), args);
    case 'cp':
      return cpCommand(connect(), args);
    case 'logs':
      return logsCommand(connect(), args);
    case 'shell':
      return shellCommand(connect(), args);
    case 'url':
      return urlCommand(connect(), args);
    case 'network':
      return networkCommand(connect(), args);
    case 'token':
      return tokenCommand(connect(), args);
    case 'tenant':
      return tenantCommand(connect(), args);
    case 'key':
      return keyCommand(connect(), args);
    case 'admin-key':
      return adminKeyCommand(connect(), args);
    case 'exec': {
      const parsed = parseArgs(args, EXEC_FLAGS);
      const [id] = parsed.positionals;
      if (!id || parsed.positionals.length > 1) throw new UsageError('usage: capsule exec ID [options] -- CMD...');
      return streamExec(await connect().microvms.get(id), parsed.rest, parsed);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`capsule: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof CapsuleError) process.stderr.write(`capsule: ${err.code}: ${err.message}\n`);
    else process.stderr.write(`capsule: ${(err as Error)?.stack ?? err}\n`);
    process.exit(1);
  },
);
