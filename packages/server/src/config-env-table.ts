// README's table of environment variables, generated from the table in config-env.ts: README.md holds
// it between marker comments; `npm run env-table` rewrites it there and a unit test fails while the two differ.
import { ENV_GROUPS, ENV_VARS, type EnvVar } from './config-env.js';

export const README_FILE = new URL('../../../README.md', import.meta.url);
const TABLE_START = '<!-- env-table:start: generated from packages/server/src/config-env.ts by `npm run env-table` -->';
const TABLE_END = '<!-- env-table:end -->';

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function defaultCell(entry: EnvVar): string {
  if (!('default' in entry)) return cell(entry.unset);
  return entry.default === '' ? 'none' : `\`${cell(entry.default)}\``;
}

/** The Markdown between the markers: how values are read, then one Variable | Default | Meaning table per group. */
export function envTable(): string {
  const lines = [
    'Every variable the server reads. An empty value is the same as an unset one (the default applies);',
    'a value the server cannot read stops `capsule serve` at start with one line naming the variable, the',
    'value and what is accepted. Switches take `1`, `true`, `on` or `0`, `false`, `off`; numbers are digits only.',
  ];
  const entries = Object.entries(ENV_VARS) as Array<[string, EnvVar]>;
  for (const [group, title] of Object.entries(ENV_GROUPS)) {
    lines.push('', `**${title}**`, '', '| Variable | Default | Meaning |', '| --- | --- | --- |');
    for (const [name, entry] of entries.filter(([, e]) => e.group === group))
      lines.push(`| \`${name}\` | ${defaultCell(entry)} | ${cell(entry.doc)} |`);
  }
  return lines.join('\n');
}

/** `readme` with the text between its markers replaced by `table`; throws if the markers are missing. */
export function withEnvTable(readme: string, table: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${TABLE_START} … ${TABLE_END} section`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${table}\n${readme.slice(end)}`;
}
