// README's environment table is the one the server's table of variables generates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ENV_VARS } from './config-env.js';
import { envTable, README_FILE, withEnvTable } from './config-env-table.js';

test("README.md's environment table is the one config-env.ts generates: run `npm run env-table` after a change", () => {
  const readme = fs.readFileSync(README_FILE, 'utf8');
  assert.equal(readme, withEnvTable(readme, envTable()));
});

test('the generated table has one row per variable, with its default', () => {
  const table = envTable();
  for (const name of Object.keys(ENV_VARS)) assert.equal(table.split(`| \`${name}\` |`).length, 2, name);
  assert.match(table, /^\| `CAPSULE_PORT` \| `7070` \| .+ \|$/m);
  assert.match(table, /^\| `DATABASE_URL` \| SQLite in `<data dir>\/capsule\.db` \| .+ \|$/m);
});

test('a README without the markers is refused, not silently left alone', () => {
  assert.throws(() => withEnvTable('# no table here\n', envTable()), /env-table:start/);
});
