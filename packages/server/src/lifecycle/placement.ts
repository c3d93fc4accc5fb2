// Where a launch runs when several hosts share the database: spread, onto the ready host (lease live) with
// the most memory free (of what it offers: CAPSULE_HOST_MAX_MEMORY_MIB, or its RAM), then the fewest
// MicroVMs, then by id; a host with none free is passed over. The host's own admission (quotas, HostRoom,
// its disk reserve) still decides: a launch it refuses for room (HOST_FULL, HOST_DRAINING) is sent on to the
// next host in this order (api/forward.ts).
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { HostRecord, HostUsage } from '../store/hosts.js';

const NONE: HostUsage = { vcpus: 0, memoryMib: 0, microvms: 0 };
const NO_ROOM = new Set<string>([ErrorCode.HOST_FULL, ErrorCode.HOST_DRAINING]);

/** A host's refusal for lack of room (503 HOST_FULL, HOST_DRAINING): what it was asked goes on to the next host. */
export function refusedForRoom(status: number, code: string): boolean {
  return status === 503 && NO_ROOM.has(code);
}

/** Nothing to send a launch or resume to: no host of the cluster is ready with room. */
export function noHostReady(): CapsuleError {
  return new CapsuleError(
    ErrorCode.HOST_FULL,
    'no host of the cluster is ready with room for it (this server runs no MicroVMs: CAPSULE_ROLE=api)',
  );
}

/** A host that takes its own MicroVMs' requests: ready (not draining, not down) and its lease live. */
export function hostServes(host: HostRecord | undefined, nowMs = Date.now()): boolean {
  return host?.state === 'ready' && Date.parse(host.leaseExpiresAt) > nowMs;
}

/** The hosts a launch may go to, best first. */
export function rankHosts(
  hosts: readonly HostRecord[],
  usage: ReadonlyMap<string, HostUsage>,
  nowMs = Date.now(),
): HostRecord[] {
  const free = (h: HostRecord) => h.capacity.memoryMib - (usage.get(h.id) ?? NONE).memoryMib;
  const ready = hosts.filter((h) => hostServes(h, nowMs) && free(h) > 0);
  const vms = (h: HostRecord) => (usage.get(h.id) ?? NONE).microvms;
  return [...ready].sort((a, b) => free(b) - free(a) || vms(a) - vms(b) || a.id.localeCompare(b.id));
}
