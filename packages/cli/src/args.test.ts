import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flag, keyValues, parseArgs, parseDurationSeconds, UsageError } from './args.js';

test('flags, repeated K=V flags and the -- command tail', () => {
  const p = parseArgs(['python', '--env', 'A=1', '--env=B=x=y', '--rm', '--', 'sh', '-c', 'echo --env'], {
    values: ['env'],
    booleans: ['rm'],
  });
  assert.deepEqual(p.positionals, ['python']);
  assert.deepEqual(keyValues(p, 'env'), { A: '1', B: 'x=y' });
  assert.equal(flag(p, 'rm'), 'true');
  assert.deepEqual(p.rest, ['sh', '-c', 'echo --env']);
  assert.throws(() => parseArgs(['--nope'], { values: [], booleans: [] }), UsageError);
  assert.throws(
    () => keyValues(parseArgs(['--env', 'novalue'], { values: ['env'], booleans: [] }), 'env'),
    /KEY=VALUE/,
  );
});

test('durations', () => {
  assert.equal(parseDurationSeconds('90', 'x'), 90);
  assert.equal(parseDurationSeconds('15m', 'x'), 900);
  assert.equal(parseDurationSeconds('1h30m', 'x'), 5400);
  assert.throws(() => parseDurationSeconds('soon', 'x'), /cannot read duration/);
});
