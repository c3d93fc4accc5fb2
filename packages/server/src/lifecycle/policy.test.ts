import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type PolicyInput } from './policy.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();
const input = (over: Partial<PolicyInput['record']>, nowS: number, activeExecs = 0): PolicyInput => ({
  record: {
    state: 'RUNNING',
    createdAt: at(0),
    startedAt: at(1),
    maximumDurationSeconds: 28_800,
    idlePolicy: { maxIdleDurationSeconds: 60, suspendedDurationSeconds: 0, autoResumeEnabled: true },
    lastActivityAt: at(10),
    suspendedAt: null,
    ...over,
  },
  nowMs: T0 + nowS * 1000,
  activeExecs,
});

test('idle RUNNING VMs suspend after maxIdleDurationSeconds of no activity, not before', () => {
  assert.equal(decide(input({}, 69)), null);
  assert.equal(decide(input({}, 70))?.kind, 'suspend');
  assert.equal(decide(input({}, 500, 1)), null, 'a running foreground exec is activity');
  assert.equal(
    decide(
      input({ idlePolicy: { maxIdleDurationSeconds: 0, suspendedDurationSeconds: 0, autoResumeEnabled: true } }, 5000),
    ),
    null,
    '0 = never',
  );
  assert.equal(decide(input({ lastActivityAt: null }, 61))?.kind, 'suspend', 'no activity yet counts from start');
});

test('SUSPENDED VMs terminate after suspendedDurationSeconds (0 = keep)', () => {
  const suspended = { state: 'SUSPENDED' as const, suspendedAt: at(100) };
  assert.equal(decide(input({ ...suspended }, 16_000)), null);
  const policy = { maxIdleDurationSeconds: 60, suspendedDurationSeconds: 30, autoResumeEnabled: true };
  assert.equal(decide(input({ ...suspended, idlePolicy: policy }, 129)), null);
  assert.equal(decide(input({ ...suspended, idlePolicy: policy }, 130))?.kind, 'terminate');
});

test('maximumDurationSeconds ends any live VM, running or suspended', () => {
  assert.equal(decide(input({ maximumDurationSeconds: 100, lastActivityAt: at(90) }, 99)), null);
  assert.match(decide(input({ maximumDurationSeconds: 100 }, 100))?.reason ?? '', /maximumDurationSeconds/);
  assert.equal(
    decide(input({ maximumDurationSeconds: 100, state: 'SUSPENDED', suspendedAt: at(50) }, 100))?.kind,
    'terminate',
  );
  assert.equal(decide(input({ state: 'TERMINATED' }, 1e9)), null);
});
