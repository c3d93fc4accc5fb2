// A storm of VM shapes: each new shape cold-boots and asks for a ready snapshot, but snapshot VMs run
// one at a time, at most a couple wait in line, and the snapshots kept per runtime stay within their bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { qemuProcesses, withTestServer } from './helpers.js';

test('a snapshot-shape storm: one snapshot VM at a time, and at most snapshotsPerRuntime kept', async () => {
  const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-storm-'));
  fs.chmodSync(snapshotDir, 0o755);
  try {
    await withTestServer({ snapshotDir, snapshotsPerRuntime: 2 }, async (server) => {
      await server.snapshotsBuilt;
      const shapes = [320, 352, 384, 416, 448];
      let mostSnapshotVms = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          mostSnapshotVms = Math.max(mostSnapshotVms, qemuProcesses(`${snapshotDir}/.build-`).length);
          await sleep(100);
        }
      })();
      const vms = await Promise.all(shapes.map((memoryMib) => server.capsule.microvms.run({ imageName: 'base', memoryMib })));
      assert.deepEqual(vms.map((vm) => vm.info.launchedFrom), shapes.map(() => 'boot'));
      await Promise.all(vms.map((vm) => vm.terminate()));
      // wait for the builds the storm queued (the rest were never queued)
      for (let i = 0; i < 1200 && fs.readdirSync(snapshotDir).some((d) => d.startsWith('.build-')); i++) await sleep(100);
      await sleep(1000);
      sampling = false;
      await sampler;
      const kept = fs.readdirSync(snapshotDir).filter((d) => d.startsWith('base-'));
      assert.ok(kept.length <= 2, `kept ${kept.length} base snapshots: ${kept.join(', ')}`);
      assert.equal(mostSnapshotVms, 1, 'snapshot VMs ran one at a time');
    });
  } finally {
    fs.rmSync(snapshotDir, { recursive: true, force: true });
  }
});
