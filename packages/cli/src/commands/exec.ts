// `capsule exec ID [--cwd D] [--env K=V] [--timeout 30s] -- CMD...`: streams output, forwards stdin
// (when it is not a terminal), and exits with the command's exit code (128+N for a signal).
import os from 'node:os';
import { Option } from 'commander';
import type { MicroVM } from '@capsule/sdk';
import { keyValue, parseDurationSeconds, UsageError } from '../args.js';
import { connect } from '../client.js';
import type { CliCommand } from '../command.js';

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** As typed ("30s"): the timeout message repeats it. */
  timeout?: string;
  /** false with --no-stdin. */
  stdin: boolean;
}

/** exec's options, also taken by `run --rm` (whose --env is the VM's and the command's). */
export function addExecOptions(command: CliCommand): CliCommand {
  return command
    .option('--cwd <dir>', 'working directory of the command')
    .option('--env <K=V>', 'an environment variable (repeatable)', keyValue('--env'))
    .option('--timeout <duration>', 'kill the command after this long (30s, 15m)', (text: string) => {
      parseDurationSeconds(text, '--timeout');
      return text;
    })
    .option('--no-stdin', 'do not forward stdin (it is forwarded when it is not a terminal)');
}

async function readStdin(): Promise<Uint8Array | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return chunks.length ? Buffer.concat(chunks) : undefined;
}

function write(stream: NodeJS.WriteStream, data: Uint8Array): Promise<void> | void {
  if (!stream.write(data)) return new Promise((resolve) => stream.once('drain', () => resolve()));
}

function exitCodeOf(exitCode: number | null, signal: string | null): number {
  if (exitCode !== null) return exitCode;
  const number = signal ? os.constants.signals[signal as keyof typeof os.constants.signals] : undefined;
  return 128 + (number ?? 9);
}

/** Runs `command` (not empty), streaming its output; its exit code. */
export async function streamExec(vm: MicroVM, command: string[], options: ExecOptions): Promise<number> {
  const timeout = options.timeout;
  const stdin = options.stdin ? await readStdin() : undefined;
  for await (const event of vm.execStream(command, {
    cwd: options.cwd,
    env: options.env,
    timeoutMs: timeout ? parseDurationSeconds(timeout, '--timeout') * 1000 : undefined,
    stdin,
  })) {
    if (event.type === 'stdout') await write(process.stdout, event.data);
    else if (event.type === 'stderr') await write(process.stderr, event.data);
    else {
      if (event.timedOut) process.stderr.write(`capsule: command timed out after ${timeout}\n`);
      return exitCodeOf(event.exitCode, event.signal);
    }
  }
  return 1;
}

export function defineExec(program: CliCommand): void {
  addExecOptions(program.command('exec'))
    .description('run a command in a MicroVM: streams its output, exits with its code')
    .usage('ID [options] -- CMD...')
    .argument('<ID>', 'the MicroVM')
    .addOption(new Option('--json').hideHelp()) // accepted, as it always was; the output is the command's
    .takesTail()
    .handle<ExecOptions>(async ({ args: [id], options, tail }) => {
      if (tail.length === 0) throw new UsageError('no command given: put it after --, e.g. capsule exec ID -- ls /');
      return streamExec(await connect().microvms.get(id), tail, options);
    });
}
