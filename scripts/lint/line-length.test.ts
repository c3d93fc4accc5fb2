// Lines stay within 120 columns everywhere, comments and strings included (Biome wraps code, not text):
// every tracked TypeScript and JavaScript source file is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAX_COLUMNS = 120;

test(`no source line is longer than ${MAX_COLUMNS} columns`, () => {
  const patterns = ['*.ts', '*.tsx', '*.mjs', '*.cjs', '*.js'];
  const files = execFileSync('git', ['ls-files', ...patterns], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && fs.existsSync(path.join(ROOT, f)));
  assert.ok(files.length > 100, `only ${files.length} files found`);
  const long: string[] = [];
  for (const file of files) {
    fs.readFileSync(path.join(ROOT, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if ([...line].length > MAX_COLUMNS) long.push(`${file}:${i + 1} (${[...line].length})`);
      });
  }
  assert.deepEqual(long, [], 'wrap these lines');
});
