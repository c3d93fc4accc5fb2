import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MicroVMState } from '@capsule/protocol';
import { assertTransition, canTransition } from './states.js';

test('documented transitions are allowed and terminal states stay terminal', () => {
  assert.ok(canTransition('PENDING', 'RUNNING'));
  assert.ok(canTransition('RUNNING', 'SUSPENDING'));
  assert.ok(canTransition('SUSPENDED', 'RUNNING'));
  assert.ok(canTransition('RUNNING', 'TERMINATING'));
  for (const to of MicroVMState.options) assert.equal(canTransition('TERMINATED', to), false);
});

test('an illegal transition is INVALID_STATE naming the current state', () => {
  assert.throws(
    () => assertTransition('mvm-x', 'TERMINATED', 'TERMINATING', 'terminate'),
    (err: { code: string; status: number; message: string }) => {
      assert.equal(err.code, 'INVALID_STATE');
      assert.equal(err.status, 409);
      assert.match(err.message, /cannot terminate MicroVM mvm-x: it is TERMINATED/);
      return true;
    },
  );
});
