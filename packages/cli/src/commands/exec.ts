// `capsule exec ID [--cwd D] [--env K=V] [--timeout 30s] -- CMD...`: streams output, forwards stdin
// (when it is not a terminal), and exits with the command's exit code (128+N for a signal).
import os from 'node:os';
import type { MicroVM } from '@capsule/sdk';
import { flag, has, keyValues, parseDurationSeconds, UsageError, type Parsed } from '../args.js';

export const EXEC_FLAGS = { values: ['cwd', 'env', 'timeout'], booleans: ['no-stdin', 'json'] };

async function readStdin(): Promise<Uint8Array | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return chunks.length ? Buffer.concat(chunks) : undefined;
}

function write(stream: NodeJS.WriteStream, data: Uint8Array): Promise<void> | void {
  if (!stream.write(data)) return new Promise((resolve) => stream.once('drain', () => resolve()));
}

export function exitCodeOf(exitCode: number | null, signal: string | null): number {
  if (exitCode !== null) return exitCode;
  const number = signal ? os.constants.signals[signal as keyof typeof os.constants.signals] : undefined;
  return 128 + (number ?? 9);
}

export async function streamExec(vm: MicroVM, command: string[], parsed: Parsed): Promise<number> {
  if (command.length === 0) throw new UsageError('no command given: put it after --, e.g. capsule exec ID -- ls /');
  const timeout = flag(parsed, 'timeout');
  const stdin = has(parsed, 'no-stdin') ? undefined : await readStdin();
  for await (const event of vm.execStream(command, {
    cwd: flag(parsed, 'cwd'),
    env: keyValues(parsed, 'env'),
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
