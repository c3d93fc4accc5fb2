// A MicroVM record as a row of the microvms table and back: one column per field, objects as JSON.
import type { Row } from './driver.js';
import type { MicroVMRecord } from './types.js';

const COLUMNS: Array<[keyof MicroVMRecord, string, 'json' | 'plain']> = [
  ['id', 'id', 'plain'],
  ['tenantId', 'tenant_id', 'plain'],
  ['state', 'state', 'plain'],
  ['imageName', 'image_name', 'plain'],
  ['imageVersion', 'image_version', 'plain'],
  ['vcpuCount', 'vcpu_count', 'plain'],
  ['memoryMib', 'memory_mib', 'plain'],
  ['metadata', 'metadata_json', 'json'],
  ['env', 'env_json', 'json'],
  ['egress', 'egress', 'plain'],
  ['maximumDurationSeconds', 'maximum_duration_seconds', 'plain'],
  ['accelerator', 'accelerator', 'plain'],
  ['launchedFrom', 'launched_from', 'plain'],
  ['kernelRelease', 'kernel_release', 'plain'],
  ['failureReason', 'failure_reason', 'plain'],
  ['qemuPid', 'qemu_pid', 'plain'],
  ['vmDir', 'vm_dir', 'plain'],
  ['createdAt', 'created_at', 'plain'],
  ['updatedAt', 'updated_at', 'plain'],
  ['startedAt', 'started_at', 'plain'],
  ['terminatedAt', 'terminated_at', 'plain'],
  ['idlePolicy', 'idle_policy_json', 'json'],
  ['lastActivityAt', 'last_activity_at', 'plain'],
  ['suspendedAt', 'suspended_at', 'plain'],
  ['network', 'network_json', 'json'],
  ['netSlot', 'net_slot', 'plain'],
  ['jailUid', 'jail_uid', 'plain'],
  ['aws', 'aws_json', 'json'],
  ['hostId', 'host_id', 'plain'],
  ['suspendedBlob', 'suspended_blob', 'plain'],
];
const COLUMN_OF = new Map(COLUMNS.map(([field, column, kind]) => [field, { column, kind }]));

export function toColumns(patch: Partial<MicroVMRecord>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [field, value] of Object.entries(patch)) {
    const spec = COLUMN_OF.get(field as keyof MicroVMRecord);
    if (spec) out.push([spec.column, spec.kind === 'json' ? JSON.stringify(value) : value]);
  }
  return out;
}

export function fromRow(row: Row): MicroVMRecord {
  const record: Row = {};
  for (const [field, column, kind] of COLUMNS)
    record[field] = kind === 'json' ? JSON.parse(row[column] as string) : row[column];
  return record as unknown as MicroVMRecord;
}
