// A tenant's storage quota: the bytes it holds on disk — suspended VMs' state, its VMs' disk overlays,
// its images' artifacts — against quotas.maxStorageMib. What adds bytes (a launch's overlay, a new
// image version) is refused with 429 QUOTA_EXCEEDED while the tenant is at or over its quota.
//
// A suspend is never refused by it: a running VM already holds its RAM under the running quotas, and
// refusing would keep it holding CPU and RAM until its maximum duration ends it, losing its state.
// So suspended state can take a tenant past its quota by at most what its running VMs hold, and its
// next launch or build is refused until it terminates or deletes something.
//
// Usage is measured (allocated blocks, object sizes), not estimated, and kept for a short while so a
// burst of launches costs one walk; anything that adds or frees bytes forgets the tenant's figure.
//
// Across hosts: a VM's files are on its host, so each host measures its own VMs every RECORD_INTERVAL_MS and records
// what it found in the store (store/microvm-storage.ts); a check measures this host's VMs afresh, and another host's
// count as their host last recorded them. An api node (no host id here) measures none itself.
import path from 'node:path';
import {
  CapsuleError,
  ErrorCode,
  type StorageUsage,
  type TenantQuotas,
  type TenantUsageReport,
} from '@capsule/protocol';
import type { BlobStore } from '../blobs/blob-store.js';
import { allocatedBytes } from '../allocated-bytes.js';
import type { MicroVMRecord, Store, TenantRecord } from '../store/types.js';
import { suspendDirOf } from './recovery.js';
import { effectiveQuotas, HOLDING_STATES } from './quotas.js';

const MIB = 1 << 20;
/** How long a measured usage is reused (a burst of launches walks the tenant's files once). */
const USAGE_TTL_MS = 2_000;
/** How often a host records what each of its VMs holds, for the other servers. */
const RECORD_INTERVAL_MS = 30_000;
const LIVE_FILE_STATES = ['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED', 'TERMINATING'] as const;

export interface StorageMeterDeps {
  store: Store;
  blobs: BlobStore;
  vmsDir: string;
  suspendedDir: string;
  /** Where build logs are kept: <imagesDir>/<tenant>/… */
  imagesDir: string;
  /** The quotas of a tenant that has none of its own. */
  defaults: TenantQuotas;
  /** This host, whose VMs' files are here; null: a server that runs none (CAPSULE_ROLE=api). */
  hostId: string | null;
}

const toMib = (bytes: number): number => Math.round((bytes / MIB) * 10) / 10;

export class StorageMeter {
  private readonly measured = new Map<string, { atMs: number; usage: Promise<StorageUsage> }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: StorageMeterDeps) {}

  /** Record what each of this host's VMs holds now and every RECORD_INTERVAL_MS (failures: the next round). */
  startRecording(intervalMs = RECORD_INTERVAL_MS): void {
    const { store, hostId } = this.deps;
    const round = async () => {
      if (hostId === null) return;
      // a host's VMs all name it (records from before hosts are claimed at its registration)
      const bytes = await this.measureFiles(await store.listMicroVMsInStates([...LIVE_FILE_STATES], hostId));
      if (bytes.size > 0)
        await store.recordMicroVMStorage(
          hostId,
          [...bytes].map(([id, b]) => ({ id, bytes: b })),
        );
      await store.dropEndedMicroVMStorage();
    };
    const tick = () => void round().catch(() => undefined);
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
    tick();
  }

  stopRecording(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** What the tenant holds now (at most USAGE_TTL_MS old). */
  usage(tenantId: string): Promise<StorageUsage> {
    const cached = this.measured.get(tenantId);
    if (cached && Date.now() - cached.atMs < USAGE_TTL_MS) return cached.usage;
    const usage = this.measure(tenantId);
    this.measured.set(tenantId, { atMs: Date.now(), usage });
    usage.catch(() => this.measured.delete(tenantId)); // a failed walk is not remembered
    return usage;
  }

  /** The tenant's bytes changed (a suspend, a terminate, a build, a deleted version): measure again next time. */
  forget(tenantId: string): void {
    this.measured.delete(tenantId);
  }

  /** Refuse what would add bytes while the tenant is at or over its quota: 429 QUOTA_EXCEEDED with the breakdown. */
  async check(tenantId: string, action: string): Promise<void> {
    const usage = await this.usage(tenantId);
    const limit = effectiveQuotas(await this.deps.store.getTenant(tenantId), this.deps.defaults).maxStorageMib;
    if (usage.totalMib < limit) return;
    throw new CapsuleError(
      ErrorCode.QUOTA_EXCEEDED,
      `cannot ${action}: quota maxStorageMib exceeded: ${usage.totalMib} MiB in use (suspended VMs ` +
        `${usage.suspendedMib}, disk overlays ${usage.overlaysMib}, images ${usage.imagesMib}) of ${limit} ` +
        `MiB; terminate MicroVMs or delete image versions`,
      { details: { quota: 'maxStorageMib', limit, used: usage.totalMib, requested: 0, storage: usage } },
    );
  }

  /** A tenant's quotas beside what it holds now (GET /v1/tenants/{id}/usage), measured afresh. */
  async report(tenant: TenantRecord): Promise<TenantUsageReport> {
    const held = await this.deps.store.tenantUsage(tenant.id, HOLDING_STATES);
    this.forget(tenant.id);
    const storage = await this.usage(tenant.id);
    return {
      tenantId: tenant.id,
      quotas: effectiveQuotas(tenant, this.deps.defaults),
      runningMicroVMs: held.microvms,
      vcpuCount: held.vcpuCount,
      memoryMib: held.memoryMib,
      storage,
    };
  }

  /** A VM whose files are on this host's disk. */
  private here(vm: MicroVMRecord): boolean {
    return this.deps.hostId !== null && (vm.hostId === null || vm.hostId === this.deps.hostId);
  }

  /** What each of `vms` (this host's) holds on its disk now. */
  private async measureFiles(vms: MicroVMRecord[]): Promise<Map<string, number>> {
    const bytes = new Map<string, number>();
    // a resumed VM runs on the disk it was suspended with (in its suspend directory): it counts as an overlay
    for (const vm of vms)
      bytes.set(
        vm.id,
        (await allocatedBytes(suspendDirOf(this.deps.suspendedDir, vm.id))) +
          (await allocatedBytes(vm.vmDir ?? path.join(this.deps.vmsDir, vm.id))),
      );
    return bytes;
  }

  private async measure(tenantId: string): Promise<StorageUsage> {
    const { store, blobs, imagesDir } = this.deps;
    const vms = await store.listTenantMicroVMsInStates(tenantId, [...LIVE_FILE_STATES]);
    // this host's own, measured now (only read: its recording rounds tell the other servers)
    const here = await this.measureFiles(vms.filter((vm) => this.here(vm)));
    const elsewhere = await store.microVMStorage(vms.filter((vm) => !this.here(vm)).map((vm) => vm.id));
    let suspended = 0;
    let overlays = 0;
    for (const vm of vms) {
      const bytes = here.get(vm.id) ?? elsewhere.get(vm.id) ?? 0;
      if (vm.state === 'SUSPENDED') suspended += bytes;
      else overlays += bytes;
    }
    const images =
      (await blobs.usageBytes(`images/${tenantId}`)) + (await allocatedBytes(path.join(imagesDir, tenantId)));
    return {
      totalMib: toMib(suspended + overlays + images),
      suspendedMib: toMib(suspended),
      overlaysMib: toMib(overlays),
      imagesMib: toMib(images),
    };
  }
}
