// A launch: the record PENDING first (quota admitted, uid claimed), then the VM started in its
// namespace from a snapshot or a boot (boot.ts), then RUNNING; a failure is FAILED with why, and a
// terminate that lands meanwhile ends it TERMINATED with nothing left.
import { CapsuleError, ErrorCode, resolveNetworkPolicy, type RunMicroVMRequest } from '@capsule/protocol';
import { checkTenantPolicy } from '../network/policy.js';
import type { LaunchedFrom, MicroVMRecord } from '../store/types.js';
import { StepTimer } from '../vmm/step-timer.js';
import type { Vm } from '../vmm/vm.js';
import { startMachine } from './boot.js';
import { resolveSource } from './launch-source.js';
import { withNetwork } from './network-ops.js';
import { pendingRecord } from './records.js';
import type { LifecycleCore } from './core.js';
import type { PooledClone } from './warm-pool.js';
import { poolKeyOf } from './pool-targets.js';
import { notifyHook } from '../images/hooks.js';

export async function launchVm(
  ctx: LifecycleCore,
  tenantId: string,
  request: RunMicroVMRequest,
): Promise<MicroVMRecord> {
  const { config, store, runtimes, accelerator } = ctx.deps;
  const steps = new StepTimer();
  const source = await resolveSource(runtimes, ctx.deps.images, tenantId, request.imageName, request.imageVersion);
  const { runtime, image } = source;
  const plan = image?.record.plan;
  const maximumDurationSeconds = request.maximumDurationSeconds ?? config.maxDurationCapSeconds;
  if (maximumDurationSeconds > config.maxDurationCapSeconds) {
    throw new CapsuleError(
      ErrorCode.VALIDATION_FAILED,
      `maximumDurationSeconds ${maximumDurationSeconds} exceeds the cap of ${config.maxDurationCapSeconds}`,
    );
  }
  const network = resolveNetworkPolicy(request.network ?? { egress: 'none' });
  checkTenantPolicy(network, config.egressPrivateAllow);
  const shape = {
    vcpuCount: request.vcpuCount ?? plan?.vcpuCount ?? config.defaultVcpuCount,
    memoryMib: request.memoryMib ?? plan?.memoryMib ?? config.defaultMemoryMib,
  };
  // a warm clone if its pool has one ready (its id is the VM's), else a restore or a boot
  const pooled = ctx.pool?.take(poolKeyOf(tenantId, source), shape, image?.record.version ?? null) ?? null;
  const record = pendingRecord(tenantId, request, {
    vmsDir: ctx.vmsDir,
    id: pooled?.id,
    network,
    maximumDurationSeconds,
    accelerator: accelerator.accelerator,
    imageVersion: image?.record.version ?? null,
    ...shape,
    env: { ...plan?.env, ...request.env },
    hostId: ctx.deps.config.hostId,
  });
  const id = record.id;
  // its own uid for as long as its files exist; no jail means no launch (the record says why)
  let jailError: unknown = null;
  try {
    record.jailUid = pooled ? pooled.jailUid : ctx.deps.jailer.claimUid(id);
  } catch (err) {
    jailError = err;
  }
  // a crash from here finds the clone by its record (PENDING: failed and stopped at the next start)
  if (pooled) Object.assign(record, { netSlot: pooled.netSlot, qemuPid: pooled.machine.pid });
  try {
    const release = await ctx.quotas.admit(tenantId, record);
    try {
      await store.insertMicroVM(record);
    } finally {
      release(); // from here the PENDING record counts
    }
  } catch (err) {
    if (pooled)
      await ctx.pool!.giveBack(pooled); // untouched: the next launch takes it
    else ctx.deps.jailer.releaseUid(record.jailUid, id); // no record holds it
    throw err;
  }
  if (pooled) ctx.pool!.claimed(pooled);
  steps.done('record');
  ctx.logOf(record).info('launching MicroVM', { image: record.imageName, accelerator: accelerator.accelerator });
  let machine: Vm;
  let launchedFrom: LaunchedFrom;
  try {
    if (jailError) throw jailError;
    if (pooled) {
      machine = await claimClone(ctx, record, pooled, async (vm) => {
        // an image's app hears of its launch as a restored one's does
        if (image) await notifyHook(vm.agent, image.record.plan, 'run', ctx.deps.log, id, request.runHookPayload);
      });
      launchedFrom = 'pool';
    } else {
      ({ machine, launchedFrom } = await withNetwork(ctx.netDeps, record, (netns) => {
        steps.done('network');
        return startMachine(ctx.bootDeps, record, source, netns, request.runHookPayload);
      }));
    }
    steps.done('vm');
  } catch (err) {
    const reason = err instanceof CapsuleError ? `${err.code}: ${err.message}` : String(err);
    await store.transition(id, ['PENDING', 'TERMINATING'], 'FAILED', {
      failureReason: reason,
      qemuPid: null,
      netSlot: null,
    }); // TERMINATING: terminated while it booted
    ctx.deps.jailer.releaseUid(record.jailUid, id); // the failed launch removed its files
    ctx.logOf(record).error('MicroVM launch failed', { reason: reason.split('\n')[0] });
    throw err;
  }
  const running = await store.transition(
    id,
    'PENDING',
    'RUNNING',
    {
      qemuPid: machine.pid,
      kernelRelease: runtime.kernelRelease,
      launchedFrom,
      startedAt: new Date().toISOString(),
    },
    { durationMs: steps.elapsedMs() },
  );
  if (!running) {
    // terminated while it was booting
    await machine.stop().catch(() => undefined);
    await ctx.finishTermination(id);
    return (await store.getMicroVM(id))!;
  }
  ctx.running.adopt(record, machine);
  steps.done('store');
  ctx.logOf(record).info('MicroVM launched', {
    launchedFrom,
    stepsMs: { ...steps.ms, vmSteps: pooled ? {} : machine.startStepsMs },
  });
  return running;
}

/**
 * A warm pool clone made the VM of `record`: its launch's egress policy in force (the clone waited with
 * none, so nothing more is allowed before), in its tenant's cgroup, running with fresh entropy and clock.
 * A failure stops it and releases its namespace.
 */
async function claimClone(
  ctx: LifecycleCore,
  record: MicroVMRecord,
  clone: PooledClone,
  then: (vm: Vm) => Promise<void>,
): Promise<Vm> {
  const { store, networks, jailer } = ctx.deps;
  try {
    // the stored policy: a PATCH may have landed since the record was made
    const policy = (await store.getMicroVM(record.id))?.network ?? record.network;
    await Promise.all([
      policy.egress === 'none' ? null : networks.update(record.id, policy),
      clone.machine.claim(jailer.forVm(record.tenantId, record.id, record.jailUid ?? undefined)),
    ]);
    await then(clone.machine);
    return clone.machine;
  } catch (err) {
    await clone.machine.stop().catch(() => undefined);
    await networks.release(record.id, clone.netSlot);
    await store.updateMicroVM(record.id, { netSlot: null });
    throw err;
  }
}
