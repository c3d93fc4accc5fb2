// The accelerator this host runs VMs with: KVM only when cpuinfo shows vmx/svm and a probe VM boots
// under it (accelerator.ts decides; the probe is here), TCG otherwise, unless configured. The server
// decides once at start; tests and benchmarks that drive QEMU themselves ask the same question.
import path from 'node:path';
import type { CapsuleConfig } from '../config.js';
import { type Jailer, SYSTEM_TENANT } from '../jail/jailer.js';
import type { RuntimeRegistry } from '../runtimes/registry.js';
import { type AcceleratorDecision, chooseAccelerator, hostProbeEnv } from './accelerator.js';
import { hostLaunchOptions, Machine } from './machine.js';

const PROBE_TIMEOUT_MS = 20_000;

/** Boot the base runtime under KVM, jailed as a system VM; rejects if it does not come up. */
async function probeKvm(config: CapsuleConfig, runtimes: RuntimeRegistry, jailer: Jailer): Promise<void> {
  await jailer.withJail(SYSTEM_TENANT, `probe-${process.pid}`, async (jail) => {
    const machine = await Machine.launch({
      ...hostLaunchOptions({ ...config, bootTimeoutMs: PROBE_TIMEOUT_MS }, runtimes.get('base')),
      vmDir: path.join(config.dataDir, 'vms', `probe-${process.pid}`),
      vcpuCount: 1,
      memoryMib: 256,
      accelerator: 'kvm',
      hostname: 'probe',
      jail,
    });
    await machine.stop();
  });
}

export function decideAccelerator(
  config: CapsuleConfig,
  runtimes: RuntimeRegistry,
  jailer: Jailer,
): Promise<AcceleratorDecision> {
  return chooseAccelerator(
    config.accelerator,
    hostProbeEnv(() => probeKvm(config, runtimes, jailer)),
  );
}
