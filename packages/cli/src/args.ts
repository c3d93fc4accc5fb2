// Argument parsing for the CLI: flags with values, repeatable K=V flags, and a `--` command tail.
export class UsageError extends Error {}

export interface Parsed {
  positionals: string[];
  flags: Map<string, string[]>;
  /** Everything after `--`. */
  rest: string[];
}

export function parseArgs(argv: string[], spec: { values: string[]; booleans: string[] }): Parsed {
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return { positionals, flags, rest: argv.slice(i + 1) };
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      if (spec.booleans.includes(name)) {
        flags.set(name, ['true']);
        continue;
      }
      if (!spec.values.includes(name)) throw new UsageError(`unknown option --${name}`);
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, [...(flags.get(name) ?? []), value]);
    } else positionals.push(arg);
  }
  return { positionals, flags, rest: [] };
}

export function flag(parsed: Parsed, name: string): string | undefined {
  return parsed.flags.get(name)?.at(-1);
}

export function has(parsed: Parsed, name: string): boolean {
  return parsed.flags.has(name);
}

export function keyValues(parsed: Parsed, name: string): Record<string, string> | undefined {
  const values = parsed.flags.get(name);
  if (!values) return undefined;
  const out: Record<string, string> = {};
  for (const item of values) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${name} expects KEY=VALUE, got "${item}"`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** "90" (seconds), "30s", "15m", "8h", "1h30m" → seconds. */
export function parseDurationSeconds(text: string, what: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === '') throw new UsageError(`${what}: cannot read duration "${text}" (use 30s, 15m, 8h)`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

export function parseInteger(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a whole number, got "${text}"`);
  return Number(text);
}
