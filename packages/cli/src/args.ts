// Option values read for commander (its argParser functions): durations, whole numbers, repeatable K=V
// and comma lists. A bad value is a UsageError (exit 2), thrown while the command line is parsed.
export class UsageError extends Error {}

/** "90" (seconds), "30s", "15m", "8h", "1h30m" → seconds. */
export function parseDurationSeconds(text: string, what: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === '') throw new UsageError(`${what}: cannot read duration "${text}" (use 30s, 15m, 8h)`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

export function parseInteger(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a whole number, got "${text}"`);
  return Number(text);
}

/** argParser: a duration in seconds. */
export const durationSeconds =
  (what: string) =>
  (text: string): number =>
    parseDurationSeconds(text, what);

/** argParser: a whole number. */
export const integer =
  (what: string) =>
  (text: string): number =>
    parseInteger(text, what);

/** argParser of a repeatable `--flag K=V`: each one adds a key (a later one wins). */
export const keyValue =
  (what: string) =>
  (item: string, previous: Record<string, string> | undefined): Record<string, string> => {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${what} expects KEY=VALUE, got "${item}"`);
    return { ...previous, [item.slice(0, eq)]: item.slice(eq + 1) };
  };

/** "a, b,,c" → ['a', 'b', 'c']. */
export const commaList = (value: string): string[] =>
  value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);

/** argParser of a repeatable comma list (`--deny a,b --deny c`): all items, in order. */
export const commaLists = (value: string, previous: string[] | undefined): string[] => [
  ...(previous ?? []),
  ...commaList(value),
];
