// The command line as commander definitions: every command, its options and its help. Help is made
// from these (`capsule --help`, `capsule run --help`, `capsule help image`).
import { CliCommand } from './command.js';
import { defineEndpoint } from './commands/endpoint.js';
import { defineExec } from './commands/exec.js';
import { defineFiles } from './commands/files.js';
import { defineImages } from './commands/images.js';
import { defineList, defineRun, defineVmAction } from './commands/microvms.js';
import { defineNetwork } from './commands/network.js';
import { defineServe } from './commands/serve.js';
import { defineShell } from './commands/shell.js';
import { defineTenants } from './commands/tenants.js';
import { defineHosts } from './commands/hosts.js';

const ENVIRONMENT = `
Environment: CAPSULE_URL (default http://127.0.0.1:7070), CAPSULE_API_KEY (default: <data dir>/admin-key,
the data dir being CAPSULE_DATA_DIR or .capsule).
Exit codes: 0 ok, 1 API or runtime error, 2 usage error; exec and run --rm exit with the command's code.`;

/** The `capsule` command. `output` replaces stdout/stderr for help and is inherited by every command (tests). */
export function buildProgram(output?: { writeOut(text: string): void; writeErr(text: string): void }): CliCommand {
  const program = new CliCommand('capsule');
  program
    .description('Capsule: microVM sandboxes. The command-line client, and `capsule serve`.')
    .usage('<command> [options]')
    .enablePositionalOptions() // a command's options are its own; `--` reaches the command that takes a tail
    .exitOverride() // help and parse errors come back to main(), which picks the exit code
    .addHelpText('after', ENVIRONMENT);
  if (output) program.configureOutput(output);
  defineServe(program);
  defineImages(program);
  defineRun(program);
  defineList(program);
  defineVmAction(program, 'get');
  defineExec(program);
  defineFiles(program);
  defineShell(program);
  defineNetwork(program);
  defineVmAction(program, 'suspend');
  defineVmAction(program, 'resume');
  defineVmAction(program, 'terminate');
  defineEndpoint(program);
  defineTenants(program);
  defineHosts(program);
  return program;
}
