// capsule — the command-line client (and `capsule serve`). Exit codes: 0 ok, 1 API/runtime error,
// 2 usage error; `exec` and `run --rm` exit with the guest command's code.
import { CommanderError } from 'commander';
import { CapsuleError } from '@capsule/sdk';
import { UsageError } from './args.js';
import { buildProgram } from './program.js';

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return program.exitCode;
  } catch (err) {
    // help asked for (0), or shown because a command was missing (`capsule`, `capsule image`): a usage error
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
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
