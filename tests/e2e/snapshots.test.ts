// Launch from the runtime's ready snapshot: near-instant, and every clone is its own machine — own
// files, processes, hostname, clock and random stream — even though they share one memory image.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { guestMacAddress } from '@capsule/server/internals';
import { endpointGet, useTestServer, withTestServer } from './helpers.js';

describe('ready snapshots', () => {
  const server = useTestServer();

  test('a launch restores the snapshot and fixes up identity, clock and entropy', async () => {
    await server().snapshotsBuilt;
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    assert.equal(vm.info.launchedFrom, 'snapshot');
    const result = await vm.exec('hostname; date +%s; cat /proc/sys/kernel/random/boot_id');
    const [hostname, seconds] = result.stdout.trim().split('\n');
    assert.equal(hostname, vm.id);
    assert.ok(Math.abs(Number(seconds) - Date.now() / 1000) < 10, `guest clock ${seconds}`);
    await vm.files.write('/root/after-restore.txt', 'ok');
    assert.equal((await vm.exec(['cat', '/root/after-restore.txt'])).stdout, 'ok');
  });

  test('three clones launched at once are independent', async () => {
    await server().snapshotsBuilt;
    const vms = await Promise.all(
      [0, 1, 2].map((i) => server().capsule.microvms.run({ imageName: 'python', metadata: { clone: String(i) } })),
    );
    assert.deepEqual(
      vms.map((vm) => vm.info.launchedFrom),
      ['snapshot', 'snapshot', 'snapshot'],
    );
    await Promise.all(vms.map((vm, i) => vm.exec(`echo clone-${i} > /root/who; sleep 300 >/dev/null 2>&1 &`)));
    const seen = await Promise.all(
      vms.map((vm) =>
        vm.exec(
          'cat /root/who; pgrep -c -x sleep; hostname; head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"; ' +
            'echo; cat /sys/class/net/eth0/address',
        ),
      ),
    );
    const rows = seen.map((r) => r.stdout.trim().split('\n'));
    rows.forEach((row, i) => {
      assert.equal(row[0], `clone-${i}`, 'each clone sees only its own file');
      assert.equal(row[1], '1', 'each clone runs only its own background process');
      assert.equal(row[2], vms[i].id);
      assert.equal(row[4], guestMacAddress(vms[i].id), 'each clone has its own MAC');
    });
    const randoms = rows.map((row) => row[3]);
    assert.equal(new Set(randoms).size, 3, `random streams must differ: ${randoms.join(' ')}`);
    const python = await Promise.all(
      vms.map((vm) =>
        vm.exec(['python3', '-c', 'import random, os; print(random.getrandbits(64), os.urandom(8).hex())']),
      ),
    );
    assert.equal(new Set(python.map((r) => r.stdout)).size, 3);
  });

  test('the network works after a restore renews the MAC', async () => {
    await server().snapshotsBuilt;
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    try {
      assert.equal(vm.info.launchedFrom, 'snapshot');
      // the endpoint reaches an app on the guest's address through the VM's namespace and NIC (the
      // app sees the namespace's gateway as its peer): the renewed MAC and the network both work
      await vm.exec(
        "nohup node -e \"require('http').createServer((q, r) => r.end(q.socket.remoteAddress)).listen(8080, " +
          "'0.0.0.0', () => require('fs').writeFileSync('/tmp/up', ''))\" >/dev/null 2>&1 &",
      );
      assert.equal(
        (await vm.exec('for i in $(seq 100); do [ -e /tmp/up ] && exit 0; sleep 0.1; done; exit 1')).exitCode,
        0,
        'the app listens before the first request',
      );
      const { token } = await vm.createAuthToken({ allowedPorts: [8080] });
      let page = { status: 0, body: '' };
      for (let i = 0; i < 50 && page.status !== 200; i++) {
        page = await endpointGet(server().url, vm.id, { 'x-capsule-auth': token }).catch(() => page);
        if (page.status !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(page, { status: 200, body: '10.0.2.2' });
    } finally {
      await vm.terminate();
    }
  });
});

describe('a broken snapshot', () => {
  test('a corrupt ready snapshot is discarded: the launch cold-boots, and the snapshot is rebuilt', async () => {
    const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-snap-'));
    fs.chmodSync(snapshotDir, 0o755);
    try {
      await withTestServer({ snapshotDir }, async (server) => {
        await server.snapshotsBuilt;
        const [base] = fs.readdirSync(snapshotDir).filter((d) => d.startsWith('base-'));
        assert.ok(base, 'base snapshot built');
        // a VM suspended from this snapshot must survive whatever happens to it below
        const keeper = await server.capsule.microvms.run({ imageName: 'base' });
        assert.equal(keeper.info.launchedFrom, 'snapshot');
        await keeper.files.write('/root/keep.txt', 'kept');
        await keeper.suspend();
        fs.chmodSync(path.join(snapshotDir, base, 'state'), 0o644);
        fs.writeFileSync(path.join(snapshotDir, base, 'state'), 'not a migration stream');
        const vm = await server.capsule.microvms.run({ imageName: 'base' });
        assert.equal(vm.info.launchedFrom, 'boot');
        assert.equal((await vm.exec('echo fine')).stdout, 'fine\n');
        await vm.terminate();
        // rebuilt in the background, and used again
        for (let i = 0; i < 300 && !fs.existsSync(path.join(snapshotDir, base, 'manifest.json')); i++)
          await new Promise((r) => setTimeout(r, 100));
        const again = await server.capsule.microvms.run({ imageName: 'base' });
        assert.equal(again.info.launchedFrom, 'snapshot');
        await again.terminate();

        // a shape without a snapshot cold-boots once; its snapshot is built in the background for the next
        const shaped = await server.capsule.microvms.run({ imageName: 'base', memoryMib: 640 });
        assert.equal(shaped.info.launchedFrom, 'boot');
        await shaped.terminate();
        const isShaped = (d: string): boolean => d.startsWith('base-') && d.includes('-1c-640m-');
        for (
          let i = 0;
          i < 600 &&
          !fs
            .readdirSync(snapshotDir)
            .some((d) => isShaped(d) && fs.existsSync(path.join(snapshotDir, d, 'manifest.json')));
          i++
        ) {
          await new Promise((r) => setTimeout(r, 100));
        }
        const next = await server.capsule.microvms.run({ imageName: 'base', memoryMib: 640 });
        assert.equal(next.info.launchedFrom, 'snapshot');
        assert.equal(
          (await next.exec("free -m | awk '/Mem:/ { print ($2 > 560) }'")).stdout.trim(),
          '1',
          'the restored guest has the requested memory',
        );
        assert.ok(fs.readdirSync(snapshotDir).includes(base), 'the default shape is kept beside the new one');

        // the snapshot the keeper was launched from is gone (corrupted, rebuilt, now deleted): it resumes
        fs.rmSync(path.join(snapshotDir, base), { recursive: true, force: true });
        assert.equal((await keeper.resume()).state, 'RUNNING');
        assert.equal(
          (await keeper.exec('cat /root/keep.txt; cat /etc/hostname >/dev/null && echo disk-ok')).stdout,
          'keptdisk-ok\n',
        );
      });
    } finally {
      fs.rmSync(snapshotDir, { recursive: true, force: true });
    }
  });
});
