import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BuildLog } from './build-log.js';

test('a build log keeps its head live and its tail at close, and says how much was left out', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-build-log-'));
  try {
    const file = path.join(dir, 'build.log');
    const log = new BuildLog(file, 100, 50);
    log.write('H'.repeat(60));
    log.write('H'.repeat(60)); // 20 past the head
    assert.equal(fs.readFileSync(file, 'utf8'), 'H'.repeat(100), 'the head is on disk while the build runs');
    for (let i = 0; i < 1000; i++) log.write(`line ${i}\n`);
    log.write('THE-END\n');
    log.close();
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(text.startsWith('H'.repeat(100)));
    assert.match(text, /\[… \d+ bytes of build output left out …\]/);
    assert.ok(text.endsWith('THE-END\n'));
    assert.ok(text.length < 100 + 50 + 80, `${text.length} bytes kept`);
    log.close(); // idempotent
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a short log is written whole, with no marker', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-build-log-'));
  try {
    const file = path.join(dir, 'build.log');
    const log = new BuildLog(file, 100, 50);
    log.write('hello\n');
    log.close();
    assert.equal(fs.readFileSync(file, 'utf8'), 'hello\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
