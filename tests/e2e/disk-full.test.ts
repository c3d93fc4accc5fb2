// A host whose disk fills up, on a real (loop-mounted, 1.5 GiB) filesystem holding the data dir: under
// the free-space reserve launches, uploads and suspends answer 507 and the VM stays RUNNING; past the
// reserve, a suspend that meets ENOSPC fails cleanly with the VM RUNNING and its memory intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errorOf, withTestServer } from './helpers.js';

const MIB = 1024 * 1024;

/** A fresh ext4 filesystem of `sizeMib`, loop-mounted; umount() removes it all. */
function smallFilesystem(sizeMib: number): { dir: string; umount(): void } {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-small-'));
  const image = path.join(work, 'fs.img');
  const dir = path.join(work, 'mnt');
  fs.mkdirSync(dir);
  execFileSync('truncate', ['-s', `${sizeMib}M`, image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  execFileSync('mount', ['-o', 'loop', image, dir]);
  fs.chmodSync(dir, 0o755);
  return {
    dir,
    umount() {
      execFileSync('umount', [dir]);
      fs.rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Take all but `leaveMib` of the free space with a filler file. */
function fillLeaving(dir: string, leaveMib: number): string {
  const filler = path.join(dir, 'filler');
  fs.rmSync(filler, { force: true });
  const s = fs.statfsSync(dir);
  const fillBytes = s.bavail * s.bsize - leaveMib * MIB;
  execFileSync('fallocate', ['-l', String(Math.max(0, fillBytes)), filler]);
  return filler;
}

test('disk full: 507 under the reserve (the VM stays RUNNING), ENOSPC past it fails a suspend cleanly', async () => {
  const small = smallFilesystem(1536);
  try {
    const dataDir = path.join(small.dir, 'data');
    fs.mkdirSync(dataDir, { mode: 0o755 });
    await withTestServer({ dataDir, diskReserve: { mib: 8, percent: 100 } }, async (server) => {
      const vm = await server.capsule.microvms.run({ imageName: 'base' });
      // 96 MiB of guest memory the host must keep across a suspend
      const hash = (
        await vm.exec(['sh', '-c', 'head -c 100663296 /dev/urandom > /dev/shm/blob && sha256sum /dev/shm/blob'])
      ).stdout;

      const filler = fillLeaving(small.dir, 4);
      const launch = await errorOf(await server.api('POST', '/v1/microvms', { imageName: 'base' }));
      assert.deepEqual([launch.status, launch.code], [507, 'INSUFFICIENT_STORAGE']);
      assert.match(launch.message, /MiB free on the host's disk at .* under its 8 MiB reserve/);
      const upload = await errorOf(
        await server.api('POST', '/v1/images?name=late', 'PK', { 'content-type': 'application/zip' }),
      );
      assert.equal(upload.status, 507);
      const suspend = await errorOf(await server.api('POST', `/v1/microvms/${vm.id}/suspend`));
      assert.deepEqual([suspend.status, suspend.code], [507, 'INSUFFICIENT_STORAGE']);
      assert.equal((await vm.refresh()).state, 'RUNNING');

      // past the reserve, the disk still fills during the save: SUSPEND_FAILED, RUNNING, nothing lost
      fillLeaving(small.dir, 24);
      const enospc = await errorOf(await server.api('POST', `/v1/microvms/${vm.id}/suspend`));
      assert.equal(enospc.code, 'SUSPEND_FAILED', enospc.message);
      assert.match(enospc.message, /still RUNNING/);
      assert.equal((await vm.refresh()).state, 'RUNNING');
      assert.equal((await vm.exec(['sha256sum', '/dev/shm/blob'])).stdout, hash);
      assert.deepEqual(
        fs.readdirSync(path.join(dataDir, 'suspended', vm.id)).filter((f) => f.includes('partial')),
        [],
        'no partial state left',
      );

      // room again: the same VM suspends and resumes with its memory
      fs.rmSync(filler, { force: true });
      fs.rmSync(path.join(small.dir, 'filler'), { force: true });
      await vm.suspend();
      await vm.resume();
      assert.equal((await vm.exec(['sha256sum', '/dev/shm/blob'])).stdout, hash);
      assert.equal((await server.api('GET', '/healthz')).status, 200);
    });
  } finally {
    small.umount();
  }
});

test(
  'disk full under a writing guest: QEMU pauses it, calls answer 507 saying why, and it continues losing ' +
    'nothing once space is freed',
  async () => {
    const small = smallFilesystem(1536);
    try {
      const dataDir = path.join(small.dir, 'data');
      fs.mkdirSync(dataDir, { mode: 0o755 });
      await withTestServer({ dataDir, diskReserve: { mib: 8, percent: 100 } }, async (server) => {
        const vm = await server.capsule.microvms.run({ imageName: 'base' });
        const filler = fillLeaving(small.dir, 40);
        // 96 MiB of random bytes to the guest's disk, 40 MiB of room under it: the overlay meets ENOSPC
        const writer = vm.exec([
          'sh',
          '-c',
          'head -c 100663296 /dev/urandom | tee /root/big | sha256sum | cut -d" " -f1 > /root/big.sha && sync ' +
            '&& echo written',
        ]);
        let paused: { status: number; code: string; message: string } | null = null;
        for (let i = 0; i < 120 && !paused; i++) {
          // a call that reaches the guest just before the pause waits with it: give each attempt 3 s
          const response = await fetch(`${server.url}/v1/microvms/${vm.id}/exec`, {
            method: 'POST',
            headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ command: ['true'] }),
            signal: AbortSignal.timeout(3000),
          }).catch(() => null);
          if (response && response.status === 507) paused = await errorOf(response);
          else await response?.body?.cancel();
          if (!paused) await new Promise((resolve) => setTimeout(resolve, 1000));
        }
        assert.ok(paused, 'the VM was never reported paused');
        assert.equal(paused.code, 'INSUFFICIENT_STORAGE');
        assert.match(
          paused.message,
          /paused since the host's disk filled up under it .* it continues, losing nothing, once space is freed/,
        );
        assert.equal((await vm.refresh()).state, 'RUNNING', 'paused, not failed');
        const suspend = await errorOf(await server.api('POST', `/v1/microvms/${vm.id}/suspend`));
        assert.deepEqual([suspend.status, suspend.code], [507, 'INSUFFICIENT_STORAGE'], 'no room to suspend it either');

        fs.rmSync(filler, { force: true });
        const written = await writer; // the failed writes are retried: the command just finishes
        assert.equal(written.stdout, 'written\n', written.stderr);
        const check = await vm.exec([
          'sh',
          '-c',
          'sync; echo 3 > /proc/sys/vm/drop_caches; [ "$(sha256sum /root/big | cut -d" " -f1)" = "$(cat ' +
            '/root/big.sha)" ] && echo intact; dmesg | grep -ci "i/o error" || true',
        ]);
        assert.equal(check.stdout, 'intact\n0\n', `${check.stdout}${check.stderr}`);
        await vm.suspend();
        await vm.resume();
        assert.equal(
          (await vm.exec(['sh', '-c', 'cat /root/big | sha256sum | cut -d" " -f1'])).stdout.trim(),
          (await vm.exec(['cat', '/root/big.sha'])).stdout.trim(),
        );
      });
    } finally {
      small.umount();
    }
  },
);
