// capsule shell ID: an interactive login shell in the MicroVM. On a terminal: raw mode, resizes
// follow the window; from a pipe: lines go in as typed input. Exits with the shell's status.
import { connect } from '../client.js';
import type { CliCommand } from '../command.js';

export function defineShell(program: CliCommand): void {
  program
    .command('shell')
    .description('an interactive shell in the MicroVM (PTY over WebSocket)')
    .usage('ID')
    .argument('<ID>', 'the MicroVM')
    .handle(async ({ args: [id] }) => shell(id));
}

async function shell(id: string): Promise<number> {
  const vm = await connect().microvms.get(id);
  const tty = process.stdin.isTTY && process.stdout.isTTY;
  const session = await vm.shell(tty ? { rows: process.stdout.rows, cols: process.stdout.columns } : {});
  session.onData((data) => process.stdout.write(data));
  if (tty) process.stdin.setRawMode(true);
  const onResize = (): void => session.resize(process.stdout.rows, process.stdout.columns);
  process.stdout.on('resize', onResize);
  process.stdin.on('data', (chunk: Buffer) => session.write(chunk));
  process.stdin.once('end', () => session.end());
  try {
    const exit = await session.exited;
    return exit.exitCode ?? 1;
  } finally {
    if (tty) process.stdin.setRawMode(false);
    process.stdout.off('resize', onResize);
    process.stdin.pause();
  }
}
