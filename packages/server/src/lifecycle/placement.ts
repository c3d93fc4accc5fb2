// Where a launch runs when several hosts share the database: spread, onto the ready host (lease live) with
// the most memory free, then the fewest MicroVMs, then by id. A host's own admission (quotas, its disk
// reserve) still decides; two launches placed at once may land on the same host.
import type { HostRecord, HostUsage } from '../store/hosts.js';

const NONE: HostUsage = { vcpus: 0, memoryMib: 0, microvms: 0 };

export function pickHost(
  hosts: readonly HostRecord[],
  usage: ReadonlyMap<string, HostUsage>,
  nowMs = Date.now(),
): HostRecord | null {
  const ready = hosts.filter((h) => h.state === 'ready' && Date.parse(h.leaseExpiresAt) > nowMs);
  const free = (h: HostRecord) => h.capacity.memoryMib - (usage.get(h.id) ?? NONE).memoryMib;
  const vms = (h: HostRecord) => (usage.get(h.id) ?? NONE).microvms;
  return [...ready].sort((a, b) => free(b) - free(a) || vms(a) - vms(b) || a.id.localeCompare(b.id))[0] ?? null;
}
