// The policy sweeper and an image's lifecycle hooks, without VMs (tests/support/lifecycle-harness.ts):
// idle VMs are suspended and come back on the next request, deadlines terminate, and a hook that never
// answers holds a suspend, a resume or a terminate no longer than its deadline. The hooks are an HTTP
// server on this host that the fake guest's tunnels reach, through the real agent protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MicroVMRecord } from '../store/types.js';
import type { BuildPlan } from '../images/build-plan.js';
import type { SqlStore } from '../store/sql-store.js';
import { TENANT, withLifecycle } from '../../../../tests/support/lifecycle-harness.js';
import { until } from '../../../../tests/support/until.js';

const stateOf = async (h: { service: { get(t: string, id: string): Promise<MicroVMRecord> } }, id: string) =>
  (await h.service.get(TENANT, id)).state;

test('sweeper: idle → SUSPENDED, back on the next request; maximum and suspended durations terminate', async () => {
  await withLifecycle({}, async (h) => {
    const idle = await h.service.run(TENANT, { imageName: 'base', idlePolicy: { maxIdleDurationSeconds: 1 } });
    const busy = await h.service.run(TENANT, { imageName: 'base', idlePolicy: { maxIdleDurationSeconds: 1 } });
    const brief = await h.service.run(TENANT, { imageName: 'base', maximumDurationSeconds: 1 });
    const parked = await h.service.run(TENANT, { imageName: 'base', idlePolicy: { suspendedDurationSeconds: 1 } });
    h.hypervisor.vmOf(idle.id).memory.x = '1';
    await h.service.suspend(TENANT, parked.id);
    h.service.startPolicySweeper(50);
    // a request every 200 ms is activity: this one never idles
    const keepBusy = setInterval(() => void h.service.get(TENANT, busy.id), 200);
    try {
      await until('the idle VM suspended', async () => (await h.store.getMicroVM(idle.id))?.state === 'SUSPENDED');
      await until('the brief VM terminated', async () => (await h.store.getMicroVM(brief.id))?.state === 'TERMINATED');
      await until(
        'the parked VM terminated',
        async () => (await h.store.getMicroVM(parked.id))?.state === 'TERMINATED',
      );
      assert.equal(await stateOf(h, busy.id), 'RUNNING');
    } finally {
      clearInterval(keepBusy);
    }
    // auto-resume: the next call that needs the guest brings it back, with what it held
    const { record } = await h.service.agentFor(TENANT, idle.id, 'exec');
    assert.equal(record.state, 'RUNNING');
    assert.equal(h.hypervisor.vmOf(idle.id).memory.x, '1');
    const ids = h.hypervisor.running.map((v) => v.options.hostname).sort();
    assert.deepEqual(ids, [busy.id, idle.id].sort());
  });
});

/** The app's hook server: records each call; the hooks named in `hang` never answer. */
async function hookServer(
  hang: string[],
): Promise<{ port: number; calls: Array<{ hook: string; body: string }>; close(): void }> {
  const calls: Array<{ hook: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const hook = (req.url ?? '').replace('/capsule/v1/', '');
      calls.push({ hook, body });
      if (!hang.includes(hook)) res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    calls,
    close: () => server.close(() => undefined) && server.closeAllConnections(),
  };
}

test('hooks: run gets its payload; one that never answers is cut at its deadline, the action goes on', async () => {
  const hooks = await hookServer(['suspend', 'terminate']);
  const hookTimeoutMs = 300;
  const plan: BuildPlan = {
    runtime: 'base',
    steps: [],
    env: {},
    workdir: '/app',
    user: 'root',
    start: null,
    port: null,
    memoryMib: null,
    vcpuCount: null,
    hookPort: hooks.port,
    hookTimeoutMs,
  };
  const images = (store: SqlStore) => ({
    launchable: async (tenantId: string, name: string, version?: number) => {
      const record = await store.getImageVersion(tenantId, name, version ?? 1);
      if (!record) throw new Error(`no image ${name}`);
      return { record, layerPath: '/nonexistent/layer.qcow2', snapshot: null };
    },
  });
  try {
    await withLifecycle({ images }, async (h) => {
      const now = new Date().toISOString();
      await h.store.insertImageVersion({
        tenantId: TENANT,
        name: 'app',
        state: 'SUCCESSFUL',
        runtime: 'base',
        source: 'zip',
        plan,
        failureReason: null,
        failedStep: null,
        createdAt: now,
        updatedAt: now,
        finishedAt: now,
        status: 'ACTIVE',
        awsConfig: null,
        buildHostId: null,
      });
      const vm = await h.service.run(TENANT, { imageName: 'app', imageVersion: 1, runHookPayload: '{"task":42}' });
      assert.deepEqual(hooks.calls, [{ hook: 'run', body: '{"task":42}' }]);
      const startedMs = Date.now();
      assert.equal((await h.service.suspend(TENANT, vm.id)).state, 'SUSPENDED');
      assert.ok(Date.now() - startedMs >= hookTimeoutMs, 'the suspend waited for its hook');
      await h.service.resume(TENANT, vm.id);
      assert.equal((await h.service.terminate(TENANT, vm.id)).state, 'TERMINATED');
      assert.deepEqual(
        hooks.calls.map((c) => c.hook),
        ['run', 'suspend', 'resume', 'terminate'],
      );
      const failed = h.logs.filter((l) => /the (suspend|terminate) hook failed/.test(String(l.msg)));
      assert.equal(failed.length, 2);
      for (const line of failed)
        assert.match(String(line.error), new RegExp(`did not answer within ${hookTimeoutMs} ms`));
    });
  } finally {
    hooks.close(); // also when the harness could not be made
  }
});
