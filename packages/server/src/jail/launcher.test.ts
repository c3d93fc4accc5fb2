// The jail's launcher, run for real (as root) around small programs instead of QEMU: the process ends up
// with the VM's uid and no groups, in a root of its own that holds only the program and the files it
// was given, read-only where asked, with the mounts gone with it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config.js';
import { jailedCommand, type JailPlan } from './launcher.js';
import { prepareQemuRoot } from './qemu-root.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'launcher-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const uid = 299_999;
const LAUNCHER = loadConfig().jailLauncherPath; // built by `npm run build`
const shared = path.join(work, 'shared.img');
const runDir = path.join(work, 'vm', 'run');
const secret = path.join(work, 'admin-key');
fs.writeFileSync(shared, 'frozen');
fs.writeFileSync(secret, 'secret');
fs.mkdirSync(runDir, { recursive: true });
fs.chownSync(runDir, uid, uid);

function plan(overrides: Partial<JailPlan> = {}): JailPlan {
  return {
    uid,
    gid: uid,
    cgroupProcs: [],
    readOnly: [shared],
    writable: [runDir],
    kvm: false,
    isDirectory: (p) => p === runDir,
    ...overrides,
  };
}

function runJailed(binary: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const root = prepareQemuRoot(binary, path.join(work, 'roots'));
  const [command, argv] = jailedCommand(LAUNCHER, root, plan(), args);
  const r = spawnSync(command, argv, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("the program runs as the VM's uid and gid, with no supplementary groups", () => {
  const r = runJailed('/usr/bin/id', []);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `uid=${uid} gid=${uid} groups=${uid}`);
});

test('its root holds only the program, its libraries, the device nodes and the files it was given', () => {
  const r = runJailed('/usr/bin/ls', ['-A', '/', work, path.join(work, 'vm'), '/dev']);
  assert.equal(r.status, 0, r.stderr);
  const listing = r.stdout;
  assert.match(
    listing,
    new RegExp(`^${work}:\\nshared\\.img\\nvm\\n`, 'm'),
    'no admin-key, no roots dir: only what was bound',
  );
  assert.match(listing, new RegExp(`^${path.join(work, 'vm')}:\\nrun\\n`, 'm'), 'not even its own fstab');
  assert.match(listing, /^\/dev:\nnull\nurandom\n/m);
  assert.doesNotMatch(listing, /^etc$/m);
});

test('shared files are read-only inside even for a writer with the rights; its own directory is writable', () => {
  fs.chmodSync(shared, 0o666); // the bind's read-only flag alone must stop it
  const root = prepareQemuRoot('/usr/bin/sh', path.join(work, 'roots'));
  const script = `echo x >> ${shared} && echo wrote-shared; echo y > ${runDir}/ok && echo wrote-own`;
  const [command, argv] = jailedCommand(LAUNCHER, root, plan(), ['-c', script]);
  const r = spawnSync(command, argv, { encoding: 'utf8' });
  assert.match(r.stdout, /wrote-own/);
  assert.doesNotMatch(r.stdout, /wrote-shared/);
  assert.match(r.stderr, /Read-only file system/);
  assert.equal(fs.readFileSync(shared, 'utf8'), 'frozen');
  assert.equal(fs.statSync(path.join(runDir, 'ok')).uid, uid);
  fs.chmodSync(shared, 0o644);
});

test('paths with spaces and newlines reach the launcher as they are', () => {
  const odd = path.join(work, 'with space\nand newline.img');
  fs.writeFileSync(odd, 'odd');
  const root = prepareQemuRoot('/usr/bin/cat', path.join(work, 'roots'));
  const [command, argv] = jailedCommand(LAUNCHER, root, plan({ readOnly: [odd] }), [odd]);
  const r = spawnSync(command, argv, { encoding: 'utf8' });
  assert.equal(r.stdout, 'odd', r.stderr);
});

test('a jail that cannot be made fails before the program runs, saying what failed', () => {
  const root = prepareQemuRoot('/usr/bin/true', path.join(work, 'roots'));
  const r = spawnSync(...jailedCommand(LAUNCHER, root, plan({ readOnly: [path.join(work, 'missing')] }), []), {
    encoding: 'utf8',
  });
  assert.equal(r.status, 70);
  assert.match(r.stderr, /^capsule jail: bind .*missing: No such file or directory$/m);
  const asRoot = spawnSync(...jailedCommand(LAUNCHER, root, plan({ uid: 0 }), []), { encoding: 'utf8' });
  assert.equal(asRoot.status, 70);
  assert.match(asRoot.stderr, /refusing to run a jailed program as root/);
});

test("the launcher makes the namespace's tap for the VM's uid, replacing one already there", () => {
  const netns = `capsule-launcher-test-${process.pid}`;
  spawnSync('ip', ['netns', 'add', netns]);
  try {
    const root = prepareQemuRoot('/usr/bin/true', path.join(work, 'roots'));
    const tap = (owner: number | null, replace: boolean): string =>
      [
        ...(replace ? ['tuntap del dev tap0 mode tap'] : []),
        `tuntap add dev tap0 mode tap${owner === null ? '' : ` user ${owner} group ${owner}`}`,
        'link set tap0 up',
      ].join('\n');
    const ownerOfTap = (): string =>
      spawnSync('ip', ['netns', 'exec', netns, 'cat', '/sys/class/net/tap0/owner'], { encoding: 'utf8' }).stdout.trim();
    const launch = (): void => {
      const netnsPlan = { name: netns, tapBatch: tap(uid, false), tapReplaceBatch: tap(uid, true) };
      const [command, argv] = jailedCommand(LAUNCHER, root, plan({ netns: netnsPlan }), []);
      const r = spawnSync(command, argv, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    launch(); // a namespace made without a tap: the fresh batch
    assert.equal(ownerOfTap(), String(uid));
    spawnSync('ip', ['-n', netns, 'link', 'del', 'tap0']);
    spawnSync('ip', ['-n', netns, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap']); // root's, as without the jail
    assert.equal(ownerOfTap(), '-1');
    launch(); // the fresh batch fails on it: replaced
    assert.equal(ownerOfTap(), String(uid));
    // a tap that cannot be made fails the launch: the program never runs
    const marker = path.join(runDir, 'ran');
    const shRoot = prepareQemuRoot('/usr/bin/sh', path.join(work, 'roots'));
    const broken = { name: netns, tapBatch: 'link set nosuchdev up', tapReplaceBatch: 'link set nosuchdev up' };
    const [command, argv] = jailedCommand(LAUNCHER, shRoot, plan({ netns: broken }), ['-c', `: > ${marker}`]);
    const r = spawnSync(command, argv, { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /nosuchdev/);
    assert.equal(fs.existsSync(marker), false);
  } finally {
    spawnSync('ip', ['netns', 'del', netns]);
  }
});
