// The accelerator this host runs VMs with, decided as the server decides it (vmm/host-accelerator.ts),
// for tests and benchmarks that drive QEMU without a server: TCG here, KVM on a host that has it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  loadConfig,
  Jailer,
  createLogger,
  RuntimeRegistry,
  type Accelerator,
  decideAccelerator,
} from '@capsule/server/internals';

let decided: Promise<Accelerator> | null = null;

export function hostAccelerator(): Promise<Accelerator> {
  decided ??= (async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-accel-'));
    try {
      const config = loadConfig({ dataDir });
      const runtimes = new RuntimeRegistry(config.cacheDir, dataDir, config.agentBundlePath);
      runtimes.load();
      const log = createLogger(process.stderr, true);
      const jailer = Jailer.create({ ...config, memoryOverheadMib: config.vmMemoryOverheadMib }, log);
      return (await decideAccelerator(config, runtimes, jailer)).accelerator;
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  })();
  return decided;
}
