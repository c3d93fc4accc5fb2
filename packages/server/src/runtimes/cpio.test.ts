import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newcArchive, S_IFDIR, S_IFREG } from './cpio.js';

const CPIO = '/usr/bin/cpio';

interface Parsed {
  name: string;
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  namesize: number;
  data: Buffer;
  headerOffset: number;
  dataOffset: number;
}

/** A strict newc reader: checks magic, alignment and the name terminator of every entry. */
function parse(archive: Buffer): Parsed[] {
  const entries: Parsed[] = [];
  let offset = 0;
  for (;;) {
    assert.equal(offset % 4, 0, `header at ${offset} is 4-byte aligned`);
    const text = archive.subarray(offset, offset + 110).toString('latin1');
    assert.equal(text.slice(0, 6), '070701', `magic at ${offset}`);
    const field = (i: number) => parseInt(text.slice(6 + i * 8, 14 + i * 8), 16);
    const namesize = field(11);
    const size = field(6);
    const nameStart = offset + 110;
    assert.equal(archive[nameStart + namesize - 1], 0, 'name is NUL terminated');
    const name = archive.subarray(nameStart, nameStart + namesize - 1).toString('utf8');
    const dataOffset = nameStart + namesize + ((4 - ((110 + namesize) % 4)) % 4);
    assert.equal(dataOffset % 4, 0);
    const data = archive.subarray(dataOffset, dataOffset + size);
    assert.equal(field(12), 0, 'check field is 0 for newc');
    entries.push({
      name,
      ino: field(0),
      mode: field(1),
      nlink: field(4),
      size,
      namesize,
      data,
      headerOffset: offset,
      dataOffset,
    });
    offset = dataOffset + size + ((4 - (size % 4)) % 4);
    if (name === 'TRAILER!!!') break;
  }
  assert.equal(offset, archive.length, 'nothing after the trailer');
  return entries;
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-cpio-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function extract(archive: Buffer, dir: string): void {
  execFileSync(CPIO, ['-idm', '--quiet', '--no-absolute-filenames'], {
    cwd: dir,
    input: archive,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

test('an archive with a directory and files extracts with the system cpio', {
  skip: !fs.existsSync(CPIO) && `${CPIO} missing`,
}, (t) => {
  const dir = tempDir(t);
  const agent = Buffer.from('#!/bin/sh\necho capsule agent\n');
  const binary = Buffer.alloc(4099, 0xab); // size not a multiple of 4
  const archive = newcArchive([
    { name: 'opt', mode: S_IFDIR | 0o755 },
    { name: 'opt/capsule', mode: S_IFDIR | 0o750 },
    { name: 'opt/capsule/agent', mode: S_IFREG | 0o755, data: agent },
    { name: 'opt/capsule/blob.bin', mode: S_IFREG | 0o600, data: binary },
    { name: 'opt/capsule/empty', mode: S_IFREG | 0o644 },
    { name: 'opt/capsule/ünïcode-näme.txt', mode: S_IFREG | 0o640, data: Buffer.from('ok') },
  ]);
  extract(archive, dir);

  const root = path.join(dir, 'opt');
  assert.ok(fs.statSync(root).isDirectory());
  assert.equal(fs.statSync(root).mode & 0o7777, 0o755);
  const capsule = path.join(root, 'capsule');
  assert.ok(fs.statSync(capsule).isDirectory());
  assert.equal(fs.statSync(capsule).mode & 0o7777, 0o750);

  const files: Array<[string, Buffer, number]> = [
    ['agent', agent, 0o755],
    ['blob.bin', binary, 0o600],
    ['empty', Buffer.alloc(0), 0o644],
    ['ünïcode-näme.txt', Buffer.from('ok'), 0o640],
  ];
  for (const [name, content, mode] of files) {
    const file = path.join(capsule, name);
    const st = fs.statSync(file);
    assert.ok(st.isFile(), name);
    assert.equal(st.mode & 0o7777, mode, `${name} mode`);
    assert.ok(fs.readFileSync(file).equals(content), `${name} content`);
  }
  assert.deepEqual(fs.readdirSync(capsule).sort(), files.map(([name]) => name).sort());
  assert.deepEqual(fs.readdirSync(dir), ['opt'], 'the trailer is not extracted as a file');
  // The script is runnable as extracted.
  assert.equal(execFileSync(path.join(capsule, 'agent')).toString(), 'capsule agent\n');
});

test('cpio lists the entries in archive order', { skip: !fs.existsSync(CPIO) && `${CPIO} missing` }, () => {
  const archive = newcArchive([
    { name: 'a', mode: S_IFDIR | 0o755 },
    { name: 'a/b', mode: S_IFREG | 0o644, data: Buffer.from('b') },
    { name: 'c', mode: S_IFREG | 0o644, data: Buffer.from('c') },
  ]);
  const listing = execFileSync(CPIO, ['-it', '--quiet'], {
    input: archive,
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString();
  assert.deepEqual(listing.trim().split('\n'), ['a', 'a/b', 'c']);
});

test('the archive is 4-byte aligned and ends with the TRAILER!!! entry', () => {
  for (let n = 0; n < 8; n++) {
    // Every name length and data length residue mod 4.
    const archive = newcArchive([
      { name: 'd'.repeat(n + 1), mode: S_IFDIR | 0o755 },
      { name: `${'d'.repeat(n + 1)}/${'f'.repeat(n + 1)}`, mode: S_IFREG | 0o644, data: Buffer.alloc(n, n) },
    ]);
    assert.equal(archive.length % 4, 0, `length ${archive.length} for n=${n}`);
    const entries = parse(archive);
    assert.equal(entries.length, 3);
    const trailer = entries[2];
    assert.equal(trailer.name, 'TRAILER!!!');
    assert.equal(trailer.mode, 0);
    assert.equal(trailer.size, 0);
    assert.equal(trailer.ino, 0);
    assert.equal(trailer.namesize, 'TRAILER!!!'.length + 1);
    // The archive ends with the trailer's (padded) name: nothing after it but NUL padding.
    const tail = archive.subarray(trailer.headerOffset + 110).toString('latin1');
    assert.match(tail, /^TRAILER!!!\0+$/);
    assert.equal(entries[1].data.length, n);
    assert.ok(entries[1].data.equals(Buffer.alloc(n, n)));
  }
});

test('headers carry mode, size, unique inodes and byte-length name sizes', () => {
  const archive = newcArchive([
    { name: 'dir', mode: S_IFDIR | 0o700 },
    { name: 'dir/é', mode: S_IFREG | 0o4755, data: Buffer.from('12345') },
    { name: 'dir/x', mode: S_IFREG | 0o644, data: Buffer.alloc(0) },
  ]);
  const [dir, file, empty, trailer] = parse(archive);
  assert.equal(dir.mode, 0o040700);
  assert.equal(dir.size, 0);
  assert.equal(file.name, 'dir/é');
  assert.equal(file.namesize, Buffer.byteLength('dir/é') + 1);
  assert.equal(file.mode, 0o104755);
  assert.equal(file.size, 5);
  assert.equal(file.data.toString(), '12345');
  assert.equal(empty.size, 0);
  assert.deepEqual([dir.ino, file.ino, empty.ino, trailer.ino], [1, 2, 3, 0]);
  for (const e of [dir, file, empty, trailer]) assert.equal(e.nlink, 1);
});

test('an empty entry list is just the trailer', () => {
  const archive = newcArchive([]);
  assert.equal(archive.length % 4, 0);
  const entries = parse(archive);
  assert.deepEqual(
    entries.map((e) => e.name),
    ['TRAILER!!!'],
  );
  assert.equal(archive.length, 124); // 110 + 11 name bytes + 3 padding
});

test('mode constants', () => {
  assert.equal(S_IFDIR, 0o040000);
  assert.equal(S_IFREG, 0o100000);
});
