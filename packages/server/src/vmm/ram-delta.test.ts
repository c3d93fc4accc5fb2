// The RAM delta filter on synthetic QEMU 7.2 migration streams (the real ones are exercised by the
// suspend e2e tests): equal pages are dropped, everything else is kept byte for byte, at any chunking.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RamDeltaFilter } from './ram-delta.js';
import { RamStreamFormatError } from './migration-stream.js';

const PAGE = 4096;
const be32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const be64 = (n: number): Buffer => Buffer.concat([be32(Math.floor(n / 2 ** 32)), be32(n >>> 0)]);
const name = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
const filled = (byte: number): Buffer => Buffer.alloc(PAGE, byte);

const RAM_ID = 2;
const header = Buffer.concat([be32(0x5145564d), be32(3), Buffer.from([0x07]), be32(7), Buffer.from('microvm')]);
const setup = (blocks: Array<[string, number]>): Buffer =>
  Buffer.concat([
    Buffer.from([0x01]),
    be32(RAM_ID),
    name('ram'),
    be32(0),
    be32(4),
    be64(blocks.reduce((sum, [, bytes]) => sum + bytes, 0) | 0x04),
    ...blocks.map(([block, bytes]) => Buffer.concat([name(block), be64(bytes)])),
    be64(0x10),
    Buffer.from([0x7e]),
    be32(RAM_ID),
  ]);
const page = (block: string | null, offset: number, content: Buffer): Buffer =>
  Buffer.concat([be64(offset | 0x08 | (block ? 0 : 0x20)), block ? name(block) : Buffer.alloc(0), content]);
const zero = (block: string | null, offset: number): Buffer =>
  Buffer.concat([be64(offset | 0x02 | (block ? 0 : 0x20)), block ? name(block) : Buffer.alloc(0), Buffer.from([0])]);
const section = (type: number, records: Buffer[]): Buffer =>
  Buffer.concat([Buffer.from([type]), be32(RAM_ID), ...records, be64(0x10), Buffer.from([0x7e]), be32(RAM_ID)]);
const devices = Buffer.concat([
  Buffer.from([0x04]),
  be32(9),
  name('cpu'),
  be32(0),
  be32(1),
  Buffer.from('cpu state bytes'),
  Buffer.from([0x7e]),
  be32(9),
  Buffer.from([0x00]),
]);

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function baseFile(pages: Buffer[]): string {
  dirs.push(fs.mkdtempSync(path.join(os.tmpdir(), 'ram-delta-')));
  const file = path.join(dirs.at(-1)!, 'base');
  fs.writeFileSync(file, Buffer.concat(pages));
  return file;
}

async function filter(
  base: string,
  stream: Buffer,
  chunkBytes: number,
): Promise<{ out: Buffer; filter: RamDeltaFilter }> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += chunkBytes) chunks.push(stream.subarray(at, at + chunkBytes));
  const out: Buffer[] = [];
  const f = new RamDeltaFilter(base, 'ram0');
  await pipeline(Readable.from(chunks), f, new Writable({ write: (chunk, _e, cb) => (out.push(chunk), cb()) }));
  return { out: Buffer.concat(out), filter: f };
}

test('drops pages equal to the base, keeps the rest with their block name, copies everything else', async () => {
  const base = baseFile([filled(1), filled(2), Buffer.alloc(PAGE), filled(4)]);
  const stream = Buffer.concat([
    header,
    setup([
      ['ram0', 4 * PAGE],
      ['rom', PAGE],
    ]),
    section(0x02, [
      page('ram0', 0, filled(1)),
      page(null, PAGE, filled(9)),
      zero(null, 2 * PAGE),
      zero(null, 3 * PAGE),
    ]),
    section(0x03, [page('rom', 0, filled(1)), page('ram0', 3 * PAGE, filled(4))]),
    devices,
  ]);
  const expected = Buffer.concat([
    header,
    setup([
      ['ram0', 4 * PAGE],
      ['rom', PAGE],
    ]),
    // page 1 differs: kept, and now names its block (the record before it is gone); the zero page over
    // a non-zero base page is kept; equal pages and a zero page over a zero base page are dropped
    section(0x02, [page('ram0', PAGE, filled(9)), zero('ram0', 3 * PAGE)]),
    // another block is never compared
    section(0x03, [page('rom', 0, filled(1))]),
    devices,
  ]);
  for (const chunkBytes of [1, 7, 4099, 65536, stream.length]) {
    const { out, filter: f } = await filter(base, stream, chunkBytes);
    assert.ok(out.equals(expected), `chunks of ${chunkBytes} bytes`);
    assert.deepEqual(f.stats, { pagesKept: 3, pagesDropped: 3 });
  }
});

test('a stream it does not understand is a RamStreamFormatError', async () => {
  const base = baseFile([filled(1)]);
  const noRam = Buffer.concat([header, devices]);
  await assert.rejects(filter(base, noRam, 100), RamStreamFormatError);
  const wrongSize = Buffer.concat([header, setup([['ram0', 2 * PAGE]]), section(0x03, []), devices]);
  await assert.rejects(filter(base, wrongSize, 100), /ram0 is 8192 bytes, its base file 4096/);
  const xbzrle = Buffer.concat([
    header,
    setup([['ram0', PAGE]]),
    Buffer.from([0x02]),
    be32(RAM_ID),
    be64(0x40),
    name('ram0'),
  ]);
  await assert.rejects(filter(base, xbzrle, 100), /unsupported ram page flags 0x40/);
  const truncated = Buffer.concat([
    header,
    setup([['ram0', PAGE]]),
    Buffer.from([0x02]),
    be32(RAM_ID),
    page('ram0', 0, filled(3)).subarray(0, 100),
  ]);
  await assert.rejects(filter(base, truncated, 100), /ended in phase records/);
});
