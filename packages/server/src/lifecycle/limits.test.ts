import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CapsuleError } from '@capsule/protocol';
import { LaunchRate, SessionLimits, TokenBuckets } from './limits.js';
import { DEFAULT_API_LIMITS } from '../config.js';

test('a token bucket allows its burst, then one per 1/rate seconds, per key', () => {
  let now = 0;
  const buckets = new TokenBuckets(2, 3, () => now);
  assert.deepEqual([buckets.take('a'), buckets.take('a'), buckets.take('a')], [null, null, null]);
  assert.equal(buckets.take('a'), 500, 'the next token in 500 ms at 2/s');
  assert.equal(buckets.take('b'), null, 'another tenant has its own bucket');
  now += 500;
  assert.equal(buckets.take('a'), null);
  assert.ok((buckets.take('a') ?? 0) > 0);
  now += 60_000;
  assert.deepEqual(
    [buckets.take('a'), buckets.take('a'), buckets.take('a'), buckets.take('a') !== null],
    [null, null, null, true],
    'refills to the burst, no further',
  );
});

test('LaunchRate: RATE_LIMITED with a whole number of seconds to wait', () => {
  let now = 0;
  const rate = new LaunchRate({ launchesPerSecond: 1, launchBurst: 1 }, () => now);
  rate.check('t', 'launch');
  const err = (() => {
    try {
      rate.check('t', 'launch');
    } catch (e) {
      return e as CapsuleError;
    }
    return null;
  })();
  assert.equal(err?.code, 'RATE_LIMITED');
  assert.equal(err?.status, 429);
  assert.equal(err?.details?.retryAfterSeconds, 1);
  now += 1000;
  rate.check('t', 'launch');
});

test('SessionLimits: per VM and per tenant, released once', () => {
  const limits = new SessionLimits({ ...DEFAULT_API_LIMITS, sessionsPerVm: 2, sessionsPerTenant: 3 });
  const r1 = limits.acquire('t', 'vm1', 'session');
  limits.acquire('t', 'vm1', 'session');
  assert.throws(() => limits.acquire('t', 'vm1', 'session'), /MicroVM vm1 already has 2 exec and shell sessions open/);
  limits.acquire('t', 'vm2', 'session');
  assert.throws(() => limits.acquire('t', 'vm3', 'session'), /tenant t already has 3/);
  assert.doesNotThrow(() => limits.acquire('t', 'vm3', 'tunnel'), 'tunnels are counted apart');
  r1();
  r1(); // idempotent: releasing twice frees one slot, not two
  limits.acquire('t', 'vm3', 'session');
  assert.throws(() => limits.acquire('t', 'vm1', 'session'), /tenant t already has 3/);
});
