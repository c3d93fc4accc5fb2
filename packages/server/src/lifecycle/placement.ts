// Where a launch runs when several hosts share the database: first a ready host (lease live) that has what the
// launch restores ready, a warm clone of it before its snapshot in the local cache (each host advertises both at
// its lease renewals: `HostRecord.ready`); then, spread (the default), the one with the most memory free (of what
// it offers: CAPSULE_HOST_MAX_MEMORY_MIB, or its RAM), or, packed (CAPSULE_PLACEMENT=pack), the least that has any;
// then the fewest MicroVMs, then by id. A host with none free is passed over. The host's own admission (quotas,
// HostRoom, its disk reserve) still decides: a launch it refuses for room (HOST_FULL, HOST_DRAINING) is sent on to
// the next host in this order (api/forward.ts).
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

export type PlacementStrategy = 'spread' | 'pack';

/** What a host advertises for a launch key (pool-targets.ts poolKeyOf): a warm clone ready, or its snapshot cached. */
export const warmFor = (key: string): string => `warm:${key}`;
export const cachedFor = (key: string): string => `cached:${key}`;

/** The keys a launch of `imageName` for `tenantId` may be ready under: the tenant's image, or the runtime. */
export function launchKeysOf(tenantId: string, imageName: string): string[] {
  return [`${tenantId}/${imageName}`, imageName];
}

/** The hosts a launch may go to, best first; `want`: its launch keys (launchKeysOf). */
export function rankHosts(
  hosts: readonly HostRecord[],
  usage: ReadonlyMap<string, HostUsage>,
  options: { nowMs?: number; strategy?: PlacementStrategy; want?: readonly string[] } = {},
): HostRecord[] {
  const { nowMs = Date.now(), strategy = 'spread', want = [] } = options;
  const free = (h: HostRecord) => h.capacity.memoryMib - (usage.get(h.id) ?? NONE).memoryMib;
  const serving = hosts.filter((h) => hostServes(h, nowMs) && free(h) > 0);
  const vms = (h: HostRecord) => (usage.get(h.id) ?? NONE).microvms;
  const readiness = (h: HostRecord) =>
    Math.max(0, ...want.map((k) => (h.ready.includes(warmFor(k)) ? 2 : h.ready.includes(cachedFor(k)) ? 1 : 0)));
  const byRoom = (a: HostRecord, b: HostRecord) => (strategy === 'pack' ? free(a) - free(b) : free(b) - free(a));
  return [...serving].sort(
    (a, b) => readiness(b) - readiness(a) || byRoom(a, b) || vms(a) - vms(b) || a.id.localeCompare(b.id),
  );
}
