// A storm of VM shapes: each new shape cold-boots and asks for a ready snapshot, but snapshot VMs run
// one at a time, at most a couple wait in line, and the snapshots kept per runtime stay within their bound.
// An image build at the same time shares the system quota with them (here one system VM at a time), in
// the system's cgroup, never a tenant's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { memoryCgroupOf, qemuProcesses, withTestServer } from './helpers.js';
import { zipOf } from '../support/zip-writer.js';

test(
  'a snapshot-shape storm and an image build: one system VM at a time (system quota 1), at most ' +
    'snapshotsPerRuntime kept',
  async () => {
    const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-storm-'));
    fs.chmodSync(snapshotDir, 0o755);
    try {
      // five cold boots at once under TCG, beside whatever test runs alongside, on 2 cores: a boot may take well
      // over the default 90 s (a CI run saw 4 of them time out beside a snapshot rebuild), and boot time is not
      // what this test is about
      await withTestServer(
        {
          snapshotDir,
          snapshotsPerRuntime: 2,
          systemQuota: { maxVms: 1, maxMemoryMib: 8192 },
          bootTimeoutMs: 300_000,
        },
        async (server) => {
          await server.snapshotsBuilt;
          const shapes = [320, 352, 384, 416, 448];
          let mostSnapshotVms = 0;
          let mostSystemVms = 0;
          let mostWaiting = 0;
          const systemCgroups = new Set<string>();
          let sampling = true;
          const sampler = (async () => {
            while (sampling) {
              const snapshotVms = qemuProcesses(`${snapshotDir}/.build-`);
              // builders run in <data>/b/…, and so do the VMs that take an image's app snapshot
              const systemVms = [...snapshotVms, ...qemuProcesses(`${server.dataDir}/b/`)];
              mostSnapshotVms = Math.max(mostSnapshotVms, snapshotVms.length);
              mostSystemVms = Math.max(mostSystemVms, systemVms.length);
              for (const pid of systemVms) {
                const cgroup = memoryCgroupOf(pid);
                if (cgroup !== null) systemCgroups.add(cgroup.replace(/\/u\d+$/, ''));
              }
              const metrics = await (await server.api('GET', '/metrics')).text();
              mostWaiting = Math.max(
                mostWaiting,
                Number(/^capsule_system_vms_waiting (\d+)$/m.exec(metrics)?.[1] ?? 0),
              );
              await sleep(100);
            }
          })();
          const launched = Promise.all(
            shapes.map((memoryMib) => server.capsule.microvms.run({ imageName: 'base', memoryMib })),
          );
          // once a snapshot VM of the storm runs, an image build has to wait for room
          for (let i = 0; i < 1200 && qemuProcesses(`${snapshotDir}/.build-`).length === 0; i++) await sleep(100);
          const image = await server.capsule.images.create('storm-app', {
            zip: zipOf([{ name: 'capsule.json', data: JSON.stringify({ runtime: 'base' }) }]),
          });
          const vms = await launched;
          assert.deepEqual(
            vms.map((vm) => vm.info.launchedFrom),
            shapes.map(() => 'boot'),
          );
          await Promise.all(vms.map((vm) => vm.terminate()));
          assert.equal((await server.capsule.images.waitUntilBuilt('storm-app', image.version)).state, 'SUCCESSFUL');
          // wait for the builds the storm queued (the rest were never queued)
          for (let i = 0; i < 1200 && fs.readdirSync(snapshotDir).some((d) => d.startsWith('.build-')); i++)
            await sleep(100);
          await sleep(1000);
          sampling = false;
          await sampler;
          const kept = fs.readdirSync(snapshotDir).filter((d) => d.startsWith('base-'));
          assert.ok(kept.length <= 2, `kept ${kept.length} base snapshots: ${kept.join(', ')}`);
          assert.equal(mostSnapshotVms, 1, 'snapshot VMs ran one at a time');
          assert.equal(mostSystemVms, 1, 'builders and snapshot VMs together: one at a time');
          assert.ok(mostWaiting >= 1, 'a system VM waited for room');
          assert.ok(
            systemCgroups.size > 0 && [...systemCgroups].every((c) => /\/capsule\/_capsule$/.test(c)),
            `system VMs sit in the system's cgroup: ${[...systemCgroups].join(', ')}`,
          );
        },
      );
    } finally {
      fs.rmSync(snapshotDir, { recursive: true, force: true });
    }
  },
);
