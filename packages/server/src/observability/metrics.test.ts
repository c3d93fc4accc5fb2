// The exposition text the dashboards and tests read: series names, labels, a registry per server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from './metrics.js';

test(
  'metrics: histograms, counters and scrape-time gauges in Prometheus text; each server its own ' + 'registry',
  async () => {
    const metrics = new Metrics();
    await metrics.time(
      metrics.launchSeconds,
      async () => ({ launchedFrom: 'snapshot' }),
      (vm) => ({ launched_from: vm.launchedFrom }),
    );
    await metrics.time(metrics.suspendSeconds, async () => undefined);
    metrics.execs.inc({ outcome: 'exit' });
    metrics.requests.inc({ method: 'POST', route: '/v1/microvms/:id/exec', status: '200' });
    const usage = new Map([['ten-a', { cpuSeconds: 1.5, memoryBytes: 1024, memoryPeakBytes: 2048, diskBytes: 4096 }]]);
    const text = await metrics.render({ RUNNING: 2 }, ['RUNNING', 'SUSPENDED'], usage, {
      vms: 1,
      memoryMib: 1024,
      waiting: 3,
    });
    for (const line of [
      /^capsule_microvms\{state="RUNNING"\} 2$/m,
      /^capsule_microvms\{state="SUSPENDED"\} 0$/m,
      /^capsule_microvm_launch_seconds_count\{launched_from="snapshot"\} 1$/m,
      /^capsule_microvm_suspend_seconds_count 1$/m,
      /^capsule_microvm_suspend_seconds_bucket\{le="\+Inf"\} 1$/m,
      /^capsule_execs_total\{outcome="exit"\} 1$/m,
      /^capsule_http_requests_total\{method="POST",route="\/v1\/microvms\/:id\/exec",status="200"\} 1$/m,
      /^capsule_tenant_memory_bytes\{tenant="ten-a"\} 1024$/m,
      /^capsule_system_vms_waiting 3$/m,
    ])
      assert.match(text, line);
    // a tenant whose VMs are gone has no series left; another server's registry is untouched
    assert.doesNotMatch(await metrics.render({}, ['RUNNING'], new Map()), /tenant="ten-a"/);
    assert.doesNotMatch(await new Metrics().render({}, ['RUNNING']), /capsule_execs_total\{/);
  },
);
