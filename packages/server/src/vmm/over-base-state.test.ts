import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { PageRun } from './dirty-ram.js';
import { savedIgnoringShared } from './migration-stream.js';
import { deviceSections, snapshotStreamHead, writeOverBaseState } from './over-base-state.js';

const PAGE = 4096;
const RAM_BYTES = 64 * PAGE;
const SECTION_ID = 2;

const be32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const be64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const name = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);

/** A ready snapshot's stream as QEMU writes it with x-ignore-shared: ram0 and a ROM block, then devices. */
function snapshotStream(): { stream: Buffer; head: Buffer } {
  const config = Buffer.concat([
    Buffer.from([0x07]),
    be32(7),
    Buffer.from('microvm'),
    Buffer.from([0x05]),
    name('configuration/capabilities'),
    be32(1),
    be32(1),
    name('x-ignore-shared'),
  ]);
  const ramStart = Buffer.concat([
    Buffer.from([0x01]),
    be32(SECTION_ID),
    name('ram'),
    be32(0),
    be32(4),
    be64(BigInt(RAM_BYTES + PAGE) | 0x04n),
    name('ram0'),
    be64(BigInt(RAM_BYTES)),
    be64(0n), // its guest address (x-ignore-shared)
    name('pc.bios'),
    be64(BigInt(PAGE)),
    be64(0xfffff000n),
    be64(0x10n),
    Buffer.from([0x7e]),
    be32(SECTION_ID),
  ]);
  const head = Buffer.concat([Buffer.from('QEVM'), be32(3), config, ramStart]);
  const rest = Buffer.concat([
    Buffer.from([0x03]),
    be32(SECTION_ID),
    be64(0x10n),
    Buffer.from([0x7e]),
    be32(SECTION_ID),
  ]);
  return { stream: Buffer.concat([head, rest, Buffer.from([0x04])]), head };
}

test('a state over the base: the snapshot head, one END section of the dirtied pages, the device sections', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-obs-'));
  try {
    const { stream, head } = snapshotStream();
    const snapshotState = path.join(dir, 'snapshot-state');
    fs.writeFileSync(snapshotState, stream);
    const parsed = snapshotStreamHead(snapshotState, 'ram0', RAM_BYTES);
    assert.deepEqual(parsed.bytes, head);
    assert.equal(parsed.sectionId, SECTION_ID);
    assert.throws(() => snapshotStreamHead(snapshotState, 'ram0', RAM_BYTES * 2), /no 524288-byte ram block ram0/);

    // pages 3-4 (4 is all zero) and 10
    const runs: Array<[PageRun, Buffer]> = [
      [{ firstPage: 3, pageCount: 2 }, Buffer.concat([Buffer.alloc(PAGE, 0xaa), Buffer.alloc(PAGE)])],
      [{ firstPage: 10, pageCount: 1 }, Buffer.alloc(PAGE, 0xbb)],
    ];
    const devices = Buffer.from('QEVM\0\0\0\x03\x04', 'latin1');
    const out = path.join(dir, 'state');
    const fd = fs.openSync(out, 'w');
    const stats = writeOverBaseState(fd, {
      head: parsed,
      blockName: 'ram0',
      pages: {
        count: 3,
        read: (onRun) => {
          for (const [run, bytes] of runs) onRun(run, bytes);
        },
      },
      devices: deviceSections(devices),
      ramBytes: RAM_BYTES,
    });
    fs.closeSync(fd);
    assert.deepEqual(stats, { pagesKept: 3, pagesDropped: 61 });

    const state = fs.readFileSync(out);
    assert.deepEqual(state.subarray(0, head.length), head);
    let at = head.length;
    const take = (n: number): Buffer => state.subarray(at, (at += n));
    assert.deepEqual(take(5), Buffer.concat([Buffer.from([0x03]), be32(SECTION_ID)]));
    // the first record names its block; the rest CONTINUE; a zero page is a ZERO record of one byte
    assert.deepEqual(take(8), be64(BigInt(3 * PAGE) | 0x08n));
    assert.deepEqual(take(5), name('ram0'));
    assert.deepEqual(take(PAGE), Buffer.alloc(PAGE, 0xaa));
    assert.deepEqual(take(8), be64(BigInt(4 * PAGE) | 0x02n | 0x20n));
    assert.deepEqual(take(1), Buffer.from([0]));
    assert.deepEqual(take(8), be64(BigInt(10 * PAGE) | 0x08n | 0x20n));
    assert.deepEqual(take(PAGE), Buffer.alloc(PAGE, 0xbb));
    assert.deepEqual(take(8), be64(0x10n));
    assert.deepEqual(take(5), Buffer.concat([Buffer.from([0x7e]), be32(SECTION_ID)]));
    assert.deepEqual(take(1), Buffer.from([0x04]), 'the device sections follow, through EOF');
    assert.equal(at, state.length);
    // it says it needs x-ignore-shared on load, as the snapshot did
    assert.equal(savedIgnoringShared(out), true);
    assert.throws(() => deviceSections(Buffer.from('not a device state')), /not a QEMU device-state file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
