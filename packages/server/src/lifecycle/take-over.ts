// A SUSPENDED MicroVM of another host resumed here: allowed only when its state is published in the shared
// blob store (suspended-transfer.ts) and its host does not serve its own VMs now (down, its lease out, or
// draining). Its files are fetched first, then it is claimed with a compare-and-set on its host, so two hosts
// resuming it at once never both run it: the loser removes what it fetched. A VM whose state never left its
// host waits for that host.
import fs from 'node:fs';
import path from 'node:path';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { chownNoFollow } from '../jail/vm-files.js';
import type { MicroVMRecord } from '../store/types.js';
import type { LifecycleCore } from './core.js';
import type { LaunchSource } from './launch-source.js';
import { hostServes } from './placement.js';
import { assertOnThisHost } from './records.js';
import { suspendDirOf } from './recovery.js';
import type { LowerLayer } from './suspended-transfer.js';

/** The tenant's MicroVM for a resume here: this host's own, or another host's this host may take over. */
export async function resumableHere(ctx: LifecycleCore, tenantId: string, id: string): Promise<MicroVMRecord> {
  const record = await ctx.get(tenantId, id);
  const me = ctx.deps.config.hostId;
  if (record.hostId === null || record.hostId === me || record.state !== 'SUSPENDED') {
    assertOnThisHost(record, me, 'resume');
    return record;
  }
  const owner = (await ctx.deps.store.listHosts()).find((h) => h.id === record.hostId);
  if (hostServes(owner)) assertOnThisHost(record, me, 'resume');
  if (!record.suspendedBlob || !ctx.suspendedStates)
    throw new CapsuleError(
      ErrorCode.HOST_UNREACHABLE,
      `cannot resume MicroVM ${id} here: its suspended state is only on host ${record.hostId}, which is ` +
        `${owner?.state === 'draining' ? 'draining' : 'down'}; it resumes once that host serves again`,
      { details: { hostId: record.hostId } },
    );
  return record;
}

/** The layer at the bottom of a VM's disk chain on this host. */
export function lowerLayerOf(source: LaunchSource): LowerLayer {
  return source.image
    ? { path: source.image.layerPath, format: 'qcow2' }
    : { path: source.runtime.rootfsPath, format: 'raw' };
}

/**
 * A published suspended VM's files into this host's suspended dir (its own, lost here, or another host's), its disk
 * given to `jailUid` (null: root's until a uid is claimed for it).
 */
export async function fetchHere(
  ctx: LifecycleCore,
  record: MicroVMRecord,
  lower: LowerLayer,
  jailUid: number | null = null,
): Promise<void> {
  const dir = suspendDirOf(ctx.suspendedDir, record.id);
  fs.mkdirSync(ctx.suspendedDir, { recursive: true, mode: 0o700 });
  await ctx.suspendedStates!.fetch(record.suspendedBlob!, dir, lower);
  if (jailUid !== null && !ctx.deps.jailer.unsafe) chownNoFollow(path.join(dir, 'disk.qcow2'), jailUid, jailUid);
}

/** Fetch another host's published suspended VM into this host's suspended dir and make it this host's. */
export async function takeOver(ctx: LifecycleCore, record: MicroVMRecord, lower: LowerLayer): Promise<MicroVMRecord> {
  const from = record.hostId!;
  const dir = suspendDirOf(ctx.suspendedDir, record.id);
  const started = Date.now();
  await fetchHere(ctx, record, lower);
  const taken = await ctx.deps.store.takeSuspendedMicroVM(record.id, from, ctx.deps.config.hostId);
  if (!taken) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new CapsuleError(
      ErrorCode.INVALID_STATE,
      `cannot resume MicroVM ${record.id}: another host resumed or moved it meanwhile`,
    );
  }
  ctx.logOf(record).info('took over a suspended MicroVM', { fromHostId: from, fetchMs: Date.now() - started });
  // its QEMU's directory is made on this host
  return (await ctx.deps.store.updateMicroVM(record.id, { vmDir: path.join(ctx.vmsDir, record.id) })) ?? taken;
}

/**
 * A resume on this host holds its VM here (its `suspendedBlob` set to '', compare-and-set on host and state):
 * no other host takes it over meanwhile, and no publish finishing late records it. Returns where its published
 * state was ('' for none), for `unhold` or removal; INVALID_STATE if another host took it first.
 */
export async function holdHere(ctx: LifecycleCore, record: MicroVMRecord): Promise<string> {
  if (await ctx.deps.store.holdSuspendedOnHost(record.id, ctx.deps.config.hostId)) return record.suspendedBlob ?? '';
  throw new CapsuleError(ErrorCode.INVALID_STATE, `cannot resume MicroVM ${record.id}: it moved to another host`);
}

/** A resume that failed and left the VM SUSPENDED: movable again as before (or published again, if it was not). */
export async function unhold(ctx: LifecycleCore, record: MicroVMRecord, shared: string): Promise<void> {
  await ctx.deps.store.updateMicroVM(record.id, { suspendedBlob: shared === '' ? null : shared });
  if (shared === '' && record.suspendedAt)
    ctx.suspendedStates?.publishLater(record, suspendDirOf(ctx.suspendedDir, record.id));
}
