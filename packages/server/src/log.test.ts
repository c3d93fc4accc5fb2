// Log lines: one JSON object each with level, time and msg; a child's bindings on every line; secrets
// redacted; quiet drops info but keeps warnings and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger } from './log.js';

function capture(quiet = false) {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  const lines = () =>
    chunks
      .join('')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log: createLogger(stream, quiet), lines };
}

test('JSON lines with level, time, msg and fields; a child carries its bindings', () => {
  const { log, lines } = capture();
  log.info('server listening', { port: 7070 });
  log.child({ microvmId: 'mvm-1', tenantId: 'ten-a' }).warn('MicroVM paused', { freeMib: 0 });
  const [first, second] = lines();
  assert.deepEqual([first.level, first.msg, first.port], ['info', 'server listening', 7070]);
  assert.ok(!Number.isNaN(Date.parse(String(first.time))), String(first.time));
  assert.equal('pid' in first || 'hostname' in first, false);
  assert.deepEqual(
    [second.level, second.msg, second.microvmId, second.tenantId, second.freeMib],
    ['warn', 'MicroVM paused', 'mvm-1', 'ten-a', 0],
  );
});

test('secrets are redacted at the top level and one level down', () => {
  const { log, lines } = capture();
  log.error('request failed', {
    apiKey: 'cap_live_secret',
    request: { authorization: 'Bearer cap_x', path: '/v1/x' },
    env: { DB_PASSWORD: 'hunter2' },
  });
  const [line] = lines();
  assert.equal(line.apiKey, '[redacted]');
  assert.deepEqual(line.request, { authorization: '[redacted]', path: '/v1/x' });
  assert.equal(line.env, '[redacted]');
  assert.ok(!JSON.stringify(line).includes('hunter2') && !JSON.stringify(line).includes('cap_'));
});

test('quiet keeps warnings and errors only', () => {
  const { log, lines } = capture(true);
  log.info('chatter');
  log.warn('careful');
  log.error('broken');
  assert.deepEqual(
    lines().map((l) => l.msg),
    ['careful', 'broken'],
  );
});
