// The jail, tested from the host side with real QEMUs under TCG: every VM's QEMU has its own non-root
// uid, sees only its own files, sits in cgroups with limits, and dies FAILED with the reason when it
// crosses its memory limit. Simulated escapes run as the VM's uid (setpriv), through the VM's own view
// (/proc/PID/root) and the host's; each fails, and the server stays healthy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MicroVM } from '@capsule/sdk';
import { UID_CLAIMS_DIR } from '@capsule/server/internals';
import { errorOf, qemuProcesses, startTestServer, useTestServer, type TestServer } from './helpers.js';

function qemuPid(id: string): number {
  const [pid] = qemuProcesses(`/vms/${id}/`);
  assert.ok(pid, `a QEMU process for ${id}`);
  return pid;
}

function ids(pid: number): { uid: number; gid: number; groups: string } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]),
    gid: Number(/^Gid:\s+(\d+)/m.exec(status)![1]),
    groups: /^Groups:[ \t]*(.*)$/m.exec(status)![1].trim(),
  };
}

/** Run a shell command on the host as `uid` (what an escaped QEMU thread could do); its exit status and stderr. */
function asUid(uid: number, script: string): { status: number | null; stderr: string } {
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'sh', '-c', script], {
    encoding: 'utf8',
  });
  return { status: r.status, stderr: r.stderr };
}

/** The cgroup directory of `pid` for a v1 controller (or the unified one on v2). */
function cgroupDir(pid: number, controller: string): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1].split(',').includes(controller));
  if (v1) return path.join('/sys/fs/cgroup', controller, v1.split(':')[2]);
  return path.join('/sys/fs/cgroup', lines.find((l) => l.startsWith('0::'))!.slice(3));
}

describe('the jail', () => {
  const server = useTestServer();
  let a: MicroVM;
  let b: MicroVM;
  before(async () => {
    [a, b] = await Promise.all([
      server().capsule.microvms.run({ imageName: 'base' }),
      server().capsule.microvms.run({ imageName: 'base' }),
    ]);
  });

  test("two VMs' QEMUs run as different non-root uids, with no supplementary groups and no capabilities", () => {
    const [pa, pb] = [qemuPid(a.id), qemuPid(b.id)];
    const [ia, ib] = [ids(pa), ids(pb)];
    assert.notEqual(ia.uid, ib.uid);
    for (const i of [ia, ib]) {
      assert.ok(i.uid >= 200000 && i.uid <= 264999, `uid ${i.uid} from CAPSULE_UID_RANGE`);
      assert.equal(i.gid, i.uid);
      assert.equal(i.groups, '');
    }
    const caps = fs.readFileSync(`/proc/${pa}/status`, 'utf8');
    assert.match(caps, /^CapEff:\s+0+$/m);
    assert.match(caps, /^CapPrm:\s+0+$/m);
    // each holds its uid machine-wide while its files exist
    assert.ok(fs.existsSync(path.join(UID_CLAIMS_DIR, String(ia.uid))));
  });

  test("a QEMU's root shows none of the host's files: no /etc/shadow, no data dir, no admin key", () => {
    const pid = qemuPid(a.id);
    const root = `/proc/${pid}/root`;
    const top = fs.readdirSync(root).sort();
    const expected = new Set([
      'dev',
      'lib',
      'lib64',
      'usr',
      server().dataDir.split('/')[1],
      '/var/cache/capsule'.split('/')[1],
    ]);
    assert.deepEqual(
      top.filter((e) => !expected.has(e)),
      [],
      `only QEMU, devices and the VM's own paths: ${top.join(' ')}`,
    );
    assert.equal(fs.existsSync(`${root}/etc/shadow`), false);
    assert.equal(fs.existsSync(`${root}/etc`), false);
    assert.equal(fs.existsSync(`${root}${server().dataDir}/admin-key`), false);
    // of the data dir: the way to its own VM directory, and its runtime's initrd (the agent is in it)
    assert.deepEqual(fs.readdirSync(`${root}${server().dataDir}`).sort(), ['initrd', 'vms']);
    assert.deepEqual(fs.readdirSync(`${root}${server().dataDir}/vms`), [a.id], 'no other VM');
    assert.deepEqual(fs.readdirSync(`${root}/dev`).sort(), ['net', 'null', 'urandom']);
  });

  test('the cgroup limits are set: memory = RAM + overhead, CPU = vCPUs + margin, pids', async () => {
    const pid = qemuPid(a.id);
    const memory = cgroupDir(pid, 'memory');
    assert.match(memory, /\/capsule\/default\/u\d+$/, 'capsule/<tenant>/<vm>');
    const v2 = fs.existsSync(path.join(memory, 'memory.max'));
    const limit = Number(fs.readFileSync(path.join(memory, v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8'));
    // QEMU's own memory and threads on top of the guest's: more under TCG (its translation cache) than KVM
    const tcg = (await server().accelerator()) === 'tcg';
    assert.equal(limit, (512 + (tcg ? 192 : 96)) * 1024 * 1024);
    // one vCPU + 0.5 core (TCG) or 0.2 core (KVM) for QEMU's own threads
    const quotaUs = tcg ? 150000 : 120000;
    if (v2) assert.equal(fs.readFileSync(path.join(memory, 'cpu.max'), 'utf8').trim(), `${quotaUs} 100000`);
    else assert.equal(Number(fs.readFileSync(path.join(cgroupDir(pid, 'cpu'), 'cpu.cfs_quota_us'), 'utf8')), quotaUs);
    assert.equal(Number(fs.readFileSync(path.join(cgroupDir(pid, 'pids'), 'pids.max'), 'utf8')), 130);
    assert.ok(fs.readFileSync(path.join(memory, 'cgroup.procs'), 'utf8').split('\n').includes(String(pid)));
  });

  test('usage is on the MicroVM object and summed per tenant in /metrics', async () => {
    await a.exec(['sh', '-c', 'head -c 4000000 /dev/urandom > /root/usage && sync']);
    const got = (await (await server().api('GET', `/v1/microvms/${a.id}`)).json()) as {
      usage: { cpuSeconds: number; memoryBytes: number; memoryPeakBytes: number; diskBytes: number };
    };
    assert.ok(got.usage.cpuSeconds > 0);
    assert.ok(got.usage.memoryBytes > 10 * 2 ** 20);
    assert.ok(got.usage.memoryPeakBytes >= got.usage.memoryBytes);
    assert.ok(got.usage.diskBytes >= 4_000_000, `disk ${got.usage.diskBytes} holds the 4 MB written`);
    const metrics = await (await server().api('GET', '/metrics')).text();
    const memory = Number(/^capsule_tenant_memory_bytes\{tenant="default"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(memory >= got.usage.memoryBytes, 'the tenant sum covers its VM');
  });

  test("simulated escapes as the VM's uid fail and leave the server healthy", async () => {
    const pidA = qemuPid(a.id);
    const uidA = ids(pidA).uid;
    const dataDir = server().dataDir;
    const vmA = path.join(dataDir, 'vms', a.id);
    const vmB = path.join(dataDir, 'vms', b.id);
    // inside its own view (its jail), its run directory is sealed: no link can be planted as serial.log
    const inJail = `/proc/${pidA}/root${vmA}/run`;
    assert.notEqual(
      asUid(
        uidA,
        `ln -sf ${dataDir}/admin-key ${inJail}/serial.log.new && mv -f ${inJail}/serial.log.new ${inJail}/serial.log`,
      ).status,
      0,
    );
    assert.notEqual(asUid(uidA, `touch ${inJail}/planted`).status, 0);
    // on the host, the VM directories, the data dir's secrets and other VMs are out of reach
    assert.notEqual(asUid(uidA, `ln -sf ${dataDir}/admin-key ${vmA}/run/serial.log`).status, 0);
    assert.notEqual(
      asUid(uidA, `ln -sf ${dataDir}/admin-key ${vmA}/serial.log`).status,
      0,
      "the console log is the server's",
    );
    assert.notEqual(asUid(uidA, `cat ${dataDir}/admin-key`).status, 0);
    assert.notEqual(asUid(uidA, `touch ${vmB}/planted`).status, 0);
    assert.notEqual(asUid(uidA, `echo x >> ${vmB}/disk.qcow2`).status, 0);
    // the shared snapshot files every clone maps: read-only for all, root's
    const snapshotDir = path.join('/var/cache/capsule/snapshots');
    const memory = fs
      .readdirSync(snapshotDir)
      .filter((d) => d.startsWith('base-'))
      .map((d) => path.join(snapshotDir, d, 'memory'))
      .find((f) => fs.existsSync(f));
    assert.ok(memory, 'a ready snapshot of base');
    assert.equal(fs.statSync(memory).uid, 0);
    assert.equal(fs.statSync(memory).mode & 0o222, 0);
    assert.notEqual(asUid(uidA, `printf x | dd of=${memory} conv=notrunc 2>/dev/null`).status, 0);
    const base = `/proc/${pidA}/root${vmA}/base-memory`;
    assert.notEqual(
      asUid(uidA, `printf x | dd of=${base} conv=notrunc 2>/dev/null`).status,
      0,
      'its own view of the base memory is read-only too',
    );

    // worst case: a link already there (planted by root here) is still not followed by the log reader
    await a.exec(['sh', '-c', 'echo on-the-console > /dev/ttyS0']);
    for (let i = 0; i < 50 && !fs.existsSync(`${vmA}/serial.log`); i++) await sleep(100);
    fs.renameSync(`${vmA}/serial.log`, `${vmA}/serial.log.real`);
    fs.symlinkSync(path.join(dataDir, 'admin-key'), `${vmA}/serial.log`);
    const logs = await (await server().api('GET', `/v1/microvms/${a.id}/logs`)).text();
    assert.ok(!logs.includes(server().adminKey), 'the admin key never reaches the tenant');
    fs.rmSync(`${vmA}/serial.log`);
    fs.renameSync(`${vmA}/serial.log.real`, `${vmA}/serial.log`);

    assert.equal((await server().api('GET', '/healthz')).status, 200);
    assert.equal((await a.exec(['echo', 'still here'])).stdout, 'still here\n');
    assert.equal((await b.exec(['echo', 'me too'])).stdout, 'me too\n');
  });

  test('a link planted as the suspended disk is refused on resume, and its target is untouched', async () => {
    await b.suspend();
    const dir = path.join(server().dataDir, 'suspended', b.id);
    const uidB = fs.statSync(path.join(dir, 'disk.qcow2')).uid; // the VM's uid keeps its disk
    assert.notEqual(
      asUid(uidB, `ln -sf /root/canary ${dir}/disk.qcow2`).status,
      0,
      "the suspended directory is root's",
    );
    assert.equal(fs.statSync(dir).uid, 0);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    // worst case, planted by root: the resume refuses a link, and the canary keeps its owner
    const canary = fs.mkdtempSync('/root/capsule-canary-');
    const target = path.join(canary, 'canary');
    fs.writeFileSync(target, 'secret', { mode: 0o600 });
    fs.renameSync(path.join(dir, 'disk.qcow2'), path.join(dir, 'disk.real'));
    fs.symlinkSync(target, path.join(dir, 'disk.qcow2'));
    try {
      const err = await errorOf(await server().api('POST', `/v1/microvms/${b.id}/resume`));
      assert.equal(err.code, 'RESUME_FAILED');
      assert.match(err.message, /symbolic link/);
      assert.equal(fs.statSync(target).uid, 0);
      assert.equal(fs.readFileSync(target, 'utf8'), 'secret');
    } finally {
      fs.rmSync(path.join(dir, 'disk.qcow2'));
      fs.renameSync(path.join(dir, 'disk.real'), path.join(dir, 'disk.qcow2'));
      fs.rmSync(canary, { recursive: true, force: true });
    }
    await b.resume();
    assert.equal((await b.exec(['echo', 'resumed'])).stdout, 'resumed\n');
  });

  test("the uid is freed only when the VM's files are gone", async () => {
    const uid = ids(qemuPid(b.id)).uid;
    await b.suspend();
    assert.ok(fs.existsSync(path.join(UID_CLAIMS_DIR, String(uid))), 'a suspended VM keeps its uid');
    await b.terminate();
    assert.equal(fs.existsSync(path.join(UID_CLAIMS_DIR, String(uid))), false);
  });
});

describe('no jail, no launch', () => {
  let server: TestServer | null = null;
  after(async () => server?.close());

  test(
    'with every uid of the range taken, a launch is refused with JAIL_FAILED, and no QEMU runs as ' + 'root',
    async () => {
      // one uid in the range (outside the default one, so no other server holds it): the first VM holds it
      server = await startTestServer({ uidRange: { first: 299_000, last: 299_000 }, snapshots: false });
      const first = await server.capsule.microvms.run({ imageName: 'base' });
      const response = await server.api('POST', '/v1/microvms', { imageName: 'base' });
      const err = await errorOf(response);
      assert.equal(err.status, 503);
      assert.equal(err.code, 'JAIL_FAILED');
      assert.match(err.message, /no free uid/);
      for (const pid of qemuProcesses(server.dataDir))
        assert.notEqual(ids(pid).uid, 0, 'no QEMU of this server runs as root');
      await first.terminate();
    },
  );

  test(
    'without cgroups there is no jail: a launch is refused with JAIL_FAILED, the VM is FAILED saying why, ' +
      'nothing runs',
    async () => {
      const noCgroups = fs.mkdtempSync('/tmp/capsule-no-cgroups-');
      const s = await startTestServer({ cgroupMount: noCgroups, snapshots: false });
      try {
        const err = await errorOf(await s.api('POST', '/v1/microvms', { imageName: 'base' }));
        assert.equal(err.status, 503);
        assert.equal(err.code, 'JAIL_FAILED');
        assert.match(err.message, /cannot jail QEMU: no cgroup v1 memory, cpu, pids hierarchy/);
        const { microvms } = await s.capsule.microvms.list();
        assert.equal(microvms[0].state, 'FAILED');
        assert.match(microvms[0].info.failureReason ?? '', /JAIL_FAILED/);
        assert.deepEqual(qemuProcesses(s.dataDir), []);
      } finally {
        await s.close();
        fs.rmSync(noCgroups, { recursive: true, force: true });
      }
    },
  );

  test('a QEMU killed for its cgroup memory limit makes the VM FAILED with the reason', async () => {
    const s = await startTestServer({ vmMemoryOverheadMib: 0, snapshots: false });
    try {
      const vm = await s.capsule.microvms.run({ imageName: 'base' });
      // the guest fills most of its RAM: with QEMU's own memory on top, the cgroup (512 MiB, no overhead) is crossed
      await vm
        .exec([
          'node',
          '-e',
          'const b = []; for (let i = 0; i < 400; i++) b.push(Buffer.alloc(1 << 20, i)); setTimeout(() => {}, 60000)',
        ])
        .catch(() => undefined);
      let info = await s.capsule.microvms.get(vm.id);
      for (let i = 0; i < 100 && info.info.state !== 'FAILED'; i++) {
        await sleep(200);
        info = await s.capsule.microvms.get(vm.id);
      }
      assert.equal(info.info.state, 'FAILED');
      assert.match(info.info.failureReason ?? '', /^out of memory \(cgroup limit 512 MiB\)/);
    } finally {
      await s.close();
    }
  });
});
