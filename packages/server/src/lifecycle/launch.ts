// A launch: the record PENDING first (quota admitted, uid claimed), then the VM started in its
// namespace from a snapshot or a boot (boot.ts), then RUNNING; a failure is FAILED with why, and a
// terminate that lands meanwhile ends it TERMINATED with nothing left.
import { CapsuleError, ErrorCode, resolveNetworkPolicy, type RunMicroVMRequest } from '@capsule/protocol';
import { checkTenantPolicy } from '../network/policy.js';
import type { MicroVMRecord } from '../store/types.js';
import { StepTimer } from '../vmm/step-timer.js';
import type { Vm } from '../vmm/vm.js';
import { startMachine } from './boot.js';
import { resolveSource } from './launch-source.js';
import { withNetwork } from './network-ops.js';
import { pendingRecord } from './records.js';
import type { LifecycleCore } from './core.js';

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
  const record = pendingRecord(tenantId, request, {
    vmsDir: ctx.vmsDir,
    network,
    maximumDurationSeconds,
    accelerator: accelerator.accelerator,
    imageVersion: image?.record.version ?? null,
    vcpuCount: request.vcpuCount ?? plan?.vcpuCount ?? config.defaultVcpuCount,
    memoryMib: request.memoryMib ?? plan?.memoryMib ?? config.defaultMemoryMib,
    env: { ...plan?.env, ...request.env },
  });
  const id = record.id;
  // its own uid for as long as its files exist; no jail means no launch (the record says why)
  let jailError: unknown = null;
  try {
    record.jailUid = ctx.deps.jailer.claimUid(id);
  } catch (err) {
    jailError = err;
  }
  try {
    const release = await ctx.quotas.admit(tenantId, record);
    try {
      await store.insertMicroVM(record);
    } finally {
      release(); // from here the PENDING record counts
    }
  } catch (err) {
    ctx.deps.jailer.releaseUid(record.jailUid, id); // no record holds it
    throw err;
  }
  steps.done('record');
  ctx.logOf(record).info('launching MicroVM', { image: record.imageName, accelerator: accelerator.accelerator });
  let machine: Vm;
  let launchedFrom: 'boot' | 'snapshot';
  try {
    if (jailError) throw jailError;
    ({ machine, launchedFrom } = await withNetwork(ctx.netDeps, record, (netns) => {
      steps.done('network');
      return startMachine(ctx.bootDeps, record, source, netns, request.runHookPayload);
    }));
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
  const running = await store.transition(id, 'PENDING', 'RUNNING', {
    qemuPid: machine.pid,
    kernelRelease: runtime.kernelRelease,
    launchedFrom,
    startedAt: new Date().toISOString(),
  });
  if (!running) {
    // terminated while it was booting
    await machine.stop().catch(() => undefined);
    await ctx.finishTermination(id);
    return (await store.getMicroVM(id))!;
  }
  ctx.running.adopt(record, machine);
  steps.done('store');
  ctx.logOf(record).info('MicroVM launched', { launchedFrom, stepsMs: { ...steps.ms, vmSteps: machine.startStepsMs } });
  return running;
}
