// A MicroVM whose host is down (another server marked it so when its lease ran out: host-lease.ts) is terminated by
// whichever server is asked, so nobody waits on a machine that may never come back to be rid of it. Its record ends
// here and its published suspended state is dropped; what it held on that host (a QEMU left over, its namespace, its
// uid, its suspended files) is that host's to clean up if it ever serves again: at its start (recovery.ts), or at
// its first renewal if it ran on while given up (stopGivenUpVms).
import type { HostRecord } from '../store/hosts.js';
import type { MicroVMRecord } from '../store/types.js';
import type { LifecycleCore } from './core.js';

/** True when `record` lives on another host that is marked down. */
export async function onDownHost(
  ctx: Pick<LifecycleCore, 'deps'>,
  record: Pick<MicroVMRecord, 'hostId'>,
): Promise<boolean> {
  const hostId = record.hostId;
  if (hostId === null || hostId === ctx.deps.config.hostId) return false;
  const host: HostRecord | undefined = (await ctx.deps.store.listHosts()).find((h) => h.id === hostId);
  return host?.state === 'down';
}

/**
 * Terminate a MicroVM of a down host here: → TERMINATING → TERMINATED (compare-and-set, so the reaper failing it at
 * the same moment wins or loses cleanly), its storage figure and published state let go. Nothing of that host's is
 * touched: its slot and uid numbers are that host's, not this one's.
 */
export async function terminateWithoutHost(ctx: LifecycleCore, record: MicroVMRecord): Promise<MicroVMRecord> {
  if (record.state !== 'TERMINATING') await ctx.transition(record, 'TERMINATING', 'terminate');
  ctx.activity.forget(record.id);
  ctx.deps.storage.forget(record.tenantId);
  ctx.suspendedStates?.dropLater(record.suspendedBlob);
  const done = await ctx.deps.store.transition(record.id, 'TERMINATING', 'TERMINATED', {
    terminatedAt: new Date().toISOString(),
  });
  ctx.logOf(record).info('terminated a MicroVM of a down host', { hostId: record.hostId });
  return done ?? (await ctx.deps.store.getMicroVM(record.id))!;
}
