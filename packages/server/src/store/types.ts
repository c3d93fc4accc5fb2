// Persistence contract. Async so SQLite (default) and Postgres share one interface.
import type { MicroVMState, ResolvedIdlePolicy } from '@capsule/protocol';

export interface MicroVMRecord {
  id: string;
  tenantId: string;
  state: MicroVMState;
  imageName: string;
  imageVersion: number | null;
  vcpuCount: number;
  memoryMib: number;
  metadata: Record<string, string>;
  env: Record<string, string>;
  egress: 'none' | 'all';
  maximumDurationSeconds: number;
  idlePolicy: ResolvedIdlePolicy;
  /** Last API/exec/file call for this VM (persisted by the policy sweeper, so idleness survives a restart). */
  lastActivityAt: string | null;
  suspendedAt: string | null;
  accelerator: 'kvm' | 'tcg' | null;
  launchedFrom: 'boot' | 'snapshot' | null;
  kernelRelease: string | null;
  failureReason: string | null;
  qemuPid: number | null;
  vmDir: string | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  terminatedAt: string | null;
}

export interface ListFilter {
  tenantId: string;
  state?: MicroVMState;
  imageName?: string;
  metadata?: Record<string, string>;
  limit: number;
  /** Opaque cursor: the last id of the previous page. */
  after?: string;
}

export interface Store {
  insertMicroVM(record: MicroVMRecord): Promise<void>;
  /** Apply a partial update, only if the VM is still in `expectedState` (optimistic transition). */
  updateMicroVM(id: string, expectedState: MicroVMState | null, patch: Partial<MicroVMRecord>): Promise<MicroVMRecord | null>;
  getMicroVM(id: string): Promise<MicroVMRecord | null>;
  listMicroVMs(filter: ListFilter): Promise<MicroVMRecord[]>;
  listMicroVMsInStates(states: MicroVMState[]): Promise<MicroVMRecord[]>;
  findApiKey(keyHash: string): Promise<{ tenantId: string; isAdmin: boolean } | null>;
  insertApiKey(key: { keyHash: string; tenantId: string; isAdmin: boolean; createdAt: string }): Promise<void>;
  close(): Promise<void>;
}
