import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withDeadline } from './deadline.js';

test('withDeadline: work that never settles is cut off by the host timer', async () => {
  const started = Date.now();
  await assert.rejects(
    withDeadline(new Promise(() => undefined), 50, () => new Error('too slow')),
    /too slow/,
  );
  assert.ok(Date.now() - started < 1000);
});

test('withDeadline: work in time wins, and a late rejection is not unhandled', async () => {
  assert.equal(await withDeadline(Promise.resolve(7), 1000, () => new Error('no')), 7);
  const late = new Promise((_r, reject) => setTimeout(() => reject(new Error('late')), 20));
  await assert.rejects(
    withDeadline(late, 5, () => new Error('deadline')),
    /deadline/,
  );
  await new Promise((r) => setTimeout(r, 40)); // the late rejection lands here; the runner fails on an unhandled one
});
