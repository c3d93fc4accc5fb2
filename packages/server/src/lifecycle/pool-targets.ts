// What the warm pool keeps clones of: each runtime at the default shape (CAPSULE_WARM_POOL_SIZE each), and
// the tenants' images named by CAPSULE_WARM_POOL_IMAGES (their newest built version, at the shape of its app
// snapshot). A target resolves, when a clone is to be made, to what a launch of it restores from.
import type { VmShape } from '@capsule/protocol';
import type { ImagePool } from '../config-parsers.js';
import type { RestoreSource } from '../vmm/launch-options.js';
import type { ReadySnapshots } from '../snapshots/ready-snapshots.js';
import type { LaunchSource, LaunchSourceDeps } from './launch-source.js';
import { resolveSource } from './launch-source.js';

export type PoolTarget =
  | { kind: 'runtime'; key: string; size: number; runtime: string }
  | { kind: 'image'; key: string; size: number; tenantId: string; imageName: string };

/** A target now: what its clones start from and are claimed by (an image's version, null for a runtime). */
export interface ResolvedTarget {
  source: LaunchSource;
  restore: RestoreSource;
  shape: VmShape;
  version: number | null;
}

/** The pool key of a launch's source: its runtime's name, or tenant/image (an image name has no slash). */
export function poolKeyOf(tenantId: string, source: LaunchSource): string {
  return source.image ? `${tenantId}/${source.image.record.name}` : source.runtime.name;
}

export function poolTargets(size: number, runtimes: readonly string[], images: readonly ImagePool[]): PoolTarget[] {
  const targets: PoolTarget[] =
    size === 0 ? [] : runtimes.map((runtime) => ({ kind: 'runtime', key: runtime, size, runtime }));
  for (const { tenantId, imageName, size: clones } of images)
    targets.push({ kind: 'image', key: `${tenantId}/${imageName}`, size: clones, tenantId, imageName });
  return targets;
}

/**
 * What a clone of `target` restores from now, or null: no ready snapshot of the runtime at `shape` yet, or
 * no built version of the image with an app snapshot (a failure to find one is the same: nothing to pool).
 */
export async function resolveTarget(
  target: PoolTarget,
  deps: LaunchSourceDeps & { snapshots: Pick<ReadySnapshots, 'get'>; shape: VmShape },
): Promise<ResolvedTarget | null> {
  if (target.kind === 'runtime') {
    const snapshot = deps.snapshots.get(target.runtime, deps.shape);
    if (!snapshot) return null;
    return {
      source: { runtime: deps.runtimes.get(target.runtime), image: null },
      restore: snapshot,
      shape: deps.shape,
      version: null,
    };
  }
  const source = await resolveSource(deps.runtimes, deps.images, target.tenantId, target.imageName).catch(() => null);
  const snapshot = source?.image?.snapshot;
  if (!source?.image || !snapshot) return null;
  return {
    source,
    restore: snapshot,
    shape: { vcpuCount: snapshot.vcpuCount, memoryMib: snapshot.memoryMib },
    version: source.image.record.version,
  };
}
