// The service's parts a launch, a suspend and a resume use (launch.ts, suspend-resume.ts): its
// dependencies, running VMs, quotas and the few operations they share with it.
import type { MicroVMState } from '@capsule/protocol';
import type { Logger } from '../log.js';
import type { MicroVMRecord } from '../store/types.js';
import type { Vm } from '../vmm/vm.js';
import type { BootDeps } from './boot.js';
import type { NetworkDeps } from './network-ops.js';
import type { Activity } from './policy-sweeper.js';
import type { QuotaGate } from './quotas.js';
import type { RunningVms } from './running-vms.js';
import type { SuspendedStates } from './suspended-transfer.js';
import type { ServiceDeps } from './service-deps.js';
import type { WarmPool } from './warm-pool.js';

/** What a launch, a suspend and a resume use of the service. */
export interface LifecycleCore {
  deps: ServiceDeps;
  running: RunningVms;
  quotas: QuotaGate;
  bootDeps: BootDeps;
  netDeps: NetworkDeps;
  activity: Activity;
  suspendedDir: string;
  /** Warm clones a launch claims instead of restoring (null: none, as in the lifecycle's unit tests). */
  pool: WarmPool | null;
  /** Suspended state in the blob store every host shares (null: a suspended VM's state stays on its host). */
  suspendedStates: SuspendedStates | null;
  /** The tenant's MicroVM, or NOT_FOUND (on whichever host). */
  get(tenantId: string, id: string): Promise<MicroVMRecord>;
  /** The tenant's MicroVM, or NOT_FOUND; MICROVM_ON_ANOTHER_HOST when another host has it. */
  getHere(tenantId: string, id: string, action: string): Promise<MicroVMRecord>;
  /** A checked compare-and-set of its state, or INVALID_STATE saying what it is now. */
  transition(record: MicroVMRecord, to: MicroVMState, action: string): Promise<MicroVMRecord>;
  /** → FAILED with why; everything it holds released. */
  fail(id: string, reason: string): Promise<void>;
  /** Its image's app hears of it (never fatal). */
  imageHook(record: MicroVMRecord, machine: Vm, name: 'suspend' | 'resume' | 'terminate'): Promise<void>;
  logOf(vm: { id: string; tenantId: string | null }): Logger;
  /** Where VMs' directories are made. */
  vmsDir: string;
  /** TERMINATING → TERMINATED once its VM is gone: everything it held released. */
  finishTermination(id: string): Promise<MicroVMRecord>;
  /** Work on a VM that goes on after its operation answered: its next operation waits for it first. */
  settle(id: string, work: Promise<void>): void;
}
