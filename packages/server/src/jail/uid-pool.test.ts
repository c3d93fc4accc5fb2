// uid claims: distinct, machine-wide (a claim file per uid), exhausted with JAIL_FAILED, re-claimed
// after a restart only by their owner, swept when nobody holds them.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CapsuleError } from '@capsule/protocol';
import { UidPool } from './uid-pool.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'uid-pool-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const dataA = path.join(work, 'data-a');
const dataB = path.join(work, 'data-b');
fs.mkdirSync(dataA);
fs.mkdirSync(dataB);

test('two servers on one machine never get the same uid, and a full range says so', () => {
  const claims = path.join(work, 'claims-1');
  const a = new UidPool({ first: 300000, last: 300002 }, dataA, claims);
  const b = new UidPool({ first: 300000, last: 300002 }, dataB, claims);
  const got = [a.claim('vm-1'), b.claim('vm-2'), a.claim('vm-3')];
  assert.equal(new Set(got).size, 3);
  assert.throws(
    () => b.claim('vm-4'),
    (err: unknown) => err instanceof CapsuleError && err.code === 'JAIL_FAILED' && /no free uid/.test(err.message),
  );
  // only the holder frees it
  b.release(got[0], 'vm-1');
  assert.throws(() => b.claim('vm-4'));
  a.release(got[0], 'vm-1');
  assert.equal(b.claim('vm-4'), got[0]);
});

test('a recorded uid is re-claimed by its owner only, and the sweep drops what nobody holds', () => {
  const claims = path.join(work, 'claims-2');
  const a = new UidPool({ first: 310000, last: 310009 }, dataA, claims);
  const uid = a.claim('vm-kept');
  const gone = a.claim('vm-gone');
  assert.equal(a.reclaim(uid, 'vm-kept'), true, 'still ours');
  assert.equal(a.reclaim(uid, 'vm-other'), false, 'held by another VM');
  assert.equal(a.reclaim(5, 'vm-kept'), false, 'outside the range');
  // after a reboot the claims are gone: the recorded uid is claimed again
  fs.rmSync(path.join(claims, String(uid)));
  assert.equal(a.reclaim(uid, 'vm-kept'), true);
  // another data dir's claim that outlived its data dir goes too
  const c = new UidPool({ first: 310000, last: 310009 }, path.join(work, 'data-deleted'), claims);
  const orphan = c.claim('vm-x');
  a.sweep(new Set(['vm-kept']));
  assert.deepEqual(fs.readdirSync(claims).map(Number).sort(), [uid]);
  assert.ok(![gone, orphan].some((u) => fs.existsSync(path.join(claims, String(u)))));
});
