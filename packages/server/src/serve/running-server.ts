// What `capsule serve` starts, whatever its role: its URL, its parts the tests and the CLI reach, and its close.
import type { AcceleratorDecision } from '../vmm/accelerator.js';
import type { CapsuleConfig } from '../config.js';
import type { Jailer } from '../jail/jailer.js';
import type { MicroVMService } from '../lifecycle/microvm-service.js';
import type { RuntimeRegistry } from '../runtimes/registry.js';

export interface RunningServer {
  url: string;
  config: CapsuleConfig;
  runtimes: RuntimeRegistry;
  adminKey: string;
  accelerator: AcceleratorDecision;
  jailer: Jailer;
  service: MicroVMService;
  /** Resolves when the start-up ready-snapshot builds have finished (or failed and been logged). */
  snapshotsBuilt: Promise<void>;
  close(): Promise<void>;
}
