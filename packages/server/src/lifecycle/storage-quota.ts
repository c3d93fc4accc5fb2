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
import type { Store, TenantRecord } from '../store/types.js';
import { suspendDirOf } from './recovery.js';
import { effectiveQuotas, HOLDING_STATES } from './quotas.js';

const MIB = 1 << 20;
/** How long a measured usage is reused (a burst of launches walks the tenant's files once). */
const USAGE_TTL_MS = 2_000;

export interface StorageMeterDeps {
  store: Store;
  blobs: BlobStore;
  vmsDir: string;
  suspendedDir: string;
  /** Where build logs are kept: <imagesDir>/<tenant>/… */
  imagesDir: string;
  /** The quotas of a tenant that has none of its own. */
  defaults: TenantQuotas;
}

const toMib = (bytes: number): number => Math.round((bytes / MIB) * 10) / 10;

export class StorageMeter {
  private readonly measured = new Map<string, { atMs: number; usage: Promise<StorageUsage> }>();

  constructor(private readonly deps: StorageMeterDeps) {}

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

  private async measure(tenantId: string): Promise<StorageUsage> {
    const { store, blobs, vmsDir, suspendedDir, imagesDir } = this.deps;
    const vms = (
      await store.listMicroVMsInStates(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED', 'TERMINATING'])
    ).filter((vm) => vm.tenantId === tenantId);
    let suspended = 0;
    let overlays = 0;
    for (const vm of vms) {
      // a resumed VM runs on the disk it was suspended with (in its suspend directory): it counts as an overlay
      const bytes =
        (await allocatedBytes(suspendDirOf(suspendedDir, vm.id))) +
        (await allocatedBytes(vm.vmDir ?? path.join(vmsDir, vm.id)));
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
