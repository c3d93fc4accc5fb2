// Which host may act on a MicroVM: its own, or any for a record older than hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CapsuleError } from '@capsule/protocol';
import { assertOnThisHost } from './records.js';

test("a MicroVM is acted on only by its host (or any, from before hosts); another host's is 421 naming it", () => {
  assert.doesNotThrow(() => assertOnThisHost({ id: 'mvm-a', hostId: 'h1' }, 'h1', 'exec in'));
  assert.doesNotThrow(() => assertOnThisHost({ id: 'mvm-a', hostId: null }, 'h1', 'exec in'));
  assert.throws(
    () => assertOnThisHost({ id: 'mvm-a', hostId: 'h2' }, 'h1', 'terminate'),
    (err: unknown) =>
      err instanceof CapsuleError &&
      err.code === 'MICROVM_ON_ANOTHER_HOST' &&
      err.status === 421 &&
      err.message === 'cannot terminate MicroVM mvm-a here: it is on host h2 (ask the server there)' &&
      (err.details as { hostId: string }).hostId === 'h2',
  );
});
