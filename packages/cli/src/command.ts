// commander's Command as the CLI uses it: a parse error is a UsageError naming the command's usage
// (exit 2), an action's result is the exit code, and a command may take a `-- CMD...` tail.
import { Command } from 'commander';
import { UsageError } from './args.js';

/** What an action gets: the positional arguments, the options, and the words after `--`. */
export interface Invocation<O> {
  args: string[];
  options: O;
  tail: string[];
}

export class CliCommand extends Command {
  /** The exit code of the action that ran (set on the root command). */
  exitCode = 0;
  /** Words after the `--` that ends the options (commands made with takesTail()). */
  tail: string[] = [];
  private tailAllowed = false;

  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  /** `capsule image create`: this command's name as a user types it. */
  path(): string {
    const names: string[] = [];
    for (let c: Command | null = this; c; c = c.parent) names.unshift(c.name());
    return names.join(' ');
  }

  /** Unknown option, missing argument, too many arguments, unknown command: a UsageError, not an exit. */
  override error(message: string): never {
    const usage = `usage: ${this.path()} ${this.usage()}`;
    throw new UsageError(`${message.replace(/^error: /, '')}\n${usage}  (more: ${this.path()} --help)`);
  }

  /** Everything after the first `--` that is not an option's value is the tail, not arguments. */
  takesTail(): this {
    this.tailAllowed = true;
    return this;
  }

  override parseOptions(argv: string[]): ReturnType<Command['parseOptions']> {
    if (!this.tailAllowed) return super.parseOptions(argv);
    const end = this.endOfOptions(argv);
    this.tail = end < 0 ? [] : argv.slice(end + 1);
    return super.parseOptions(end < 0 ? argv : argv.slice(0, end));
  }

  /** The index of the `--` ending the options, skipping values (`--cwd --` takes "--" as the directory). */
  private endOfOptions(argv: string[]): number {
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--') return i;
      const option = this.options.find((o) => o.long === argv[i] || o.short === argv[i]);
      if (option?.required) i++;
    }
    return -1;
  }

  /** The action: `handler`'s result becomes the process's exit code. */
  handle<O>(handler: (invocation: Invocation<O>) => Promise<number>): this {
    return this.action(async () => {
      const code = await handler({ args: this.processedArgs as string[], options: this.opts() as O, tail: this.tail });
      this.root().exitCode = code;
    });
  }

  private root(): CliCommand {
    let root: Command = this;
    while (root.parent) root = root.parent;
    return root as CliCommand;
  }
}
