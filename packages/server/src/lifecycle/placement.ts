// Where a launch runs when several hosts share the database: spread, onto the ready host (lease live) with
// the most memory free (of what it offers: CAPSULE_HOST_MAX_MEMORY_MIB, or its RAM), then the fewest
// MicroVMs, then by id; a host with none free is passed over. The host's own admission (quotas, HostRoom,
// its disk reserve) still decides: two launches placed at once on its last room get one 503 HOST_FULL.
import type { HostRecord, HostUsage } from '../store/hosts.js';

const NONE: HostUsage = { vcpus: 0, memoryMib: 0, microvms: 0 };

export function pickHost(
  hosts: readonly HostRecord[],
  usage: ReadonlyMap<string, HostUsage>,
  nowMs = Date.now(),
): HostRecord | null {
  const free = (h: HostRecord) => h.capacity.memoryMib - (usage.get(h.id) ?? NONE).memoryMib;
  const ready = hosts.filter((h) => h.state === 'ready' && Date.parse(h.leaseExpiresAt) > nowMs && free(h) > 0);
  const vms = (h: HostRecord) => (usage.get(h.id) ?? NONE).microvms;
  return [...ready].sort((a, b) => free(b) - free(a) || vms(a) - vms(b) || a.id.localeCompare(b.id))[0] ?? null;
}
