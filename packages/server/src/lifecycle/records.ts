// MicroVM ids, a new launch's record, and the API view of a record.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CapsuleError, ErrorCode, type MicroVM, type MicroVMUsage, type RunMicroVMRequest } from '@capsule/protocol';
import type { MicroVMRecord } from '../store/types.js';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** DNS-label-safe id: it is also the MicroVM's hostname and endpoint subdomain. */
export function newMicroVMId(): string {
  const bytes = randomBytes(16);
  return 'mvm-' + Array.from(bytes, (b) => ID_ALPHABET[b & 31]).join('');
}

export function toApi(record: MicroVMRecord, endpoint: string, usage: MicroVMUsage | null): MicroVM {
  const {
    tenantId: _t,
    env: _e,
    qemuPid: _p,
    vmDir: _d,
    netSlot: _n,
    jailUid: _u,
    aws: _a,
    suspendedBlob,
    ...rest
  } = record;
  const suspendedStateLocation = record.state !== 'SUSPENDED' ? null : suspendedBlob ? 'shared' : 'host';
  return { ...rest, suspendedStateLocation, endpoint, usage };
}

/** The PENDING record of a launch: the request's fields with the defaults decided by the caller. */
export function pendingRecord(
  tenantId: string,
  request: RunMicroVMRequest,
  decided: Pick<
    MicroVMRecord,
    'network' | 'maximumDurationSeconds' | 'accelerator' | 'imageVersion' | 'vcpuCount' | 'memoryMib' | 'env' | 'hostId'
  > & { vmsDir: string /** A warm pool clone's id (it is already its hostname); else a new one. */; id?: string },
): MicroVMRecord {
  const { vmsDir, network, id = newMicroVMId(), ...fields } = decided;
  const now = new Date().toISOString();
  return {
    ...fields,
    id,
    tenantId,
    state: 'PENDING',
    imageName: request.imageName,
    metadata: request.metadata ?? {},
    egress: network.egress,
    network,
    netSlot: null,
    jailUid: null,
    aws: null,
    idlePolicy: {
      maxIdleDurationSeconds: request.idlePolicy?.maxIdleDurationSeconds ?? 0,
      suspendedDurationSeconds: request.idlePolicy?.suspendedDurationSeconds ?? 0,
      autoResumeEnabled: request.idlePolicy?.autoResumeEnabled ?? true,
    },
    lastActivityAt: null,
    suspendedAt: null,
    suspendedBlob: null,
    launchedFrom: null,
    kernelRelease: null,
    failureReason: null,
    qemuPid: null,
    vmDir: path.join(vmsDir, id),
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    terminatedAt: null,
  };
}

/**
 * A MicroVM this host can act on: its own (or one older than hosts). Another host's VM, its files and its
 * network live there: acting on it here (terminate, exec, suspend…) would touch this host's resources in its
 * name, so it is refused with the host that has it.
 */
export function assertOnThisHost(record: Pick<MicroVMRecord, 'id' | 'hostId'>, hostId: string, action: string): void {
  if (record.hostId === null || record.hostId === hostId) return;
  throw new CapsuleError(
    ErrorCode.MICROVM_ON_ANOTHER_HOST,
    `cannot ${action} MicroVM ${record.id} here: it is on host ${record.hostId} (ask the server there)`,
    { details: { hostId: record.hostId } },
  );
}
