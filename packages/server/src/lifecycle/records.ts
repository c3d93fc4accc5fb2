// MicroVM ids and the API view of a record.
import { randomBytes } from 'node:crypto';
import type { MicroVM, MicroVMUsage } from '@capsule/protocol';
import type { MicroVMRecord } from '../store/types.js';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** DNS-label-safe id: it is also the MicroVM's hostname and endpoint subdomain. */
export function newMicroVMId(): string {
  const bytes = randomBytes(16);
  return 'mvm-' + Array.from(bytes, (b) => ID_ALPHABET[b & 31]).join('');
}

export function toApi(record: MicroVMRecord, endpoint: string, usage: MicroVMUsage | null): MicroVM {
  const { tenantId: _t, env: _e, qemuPid: _p, vmDir: _d, netSlot: _n, jailUid: _u, ...rest } = record;
  return { ...rest, endpoint, usage };
}
