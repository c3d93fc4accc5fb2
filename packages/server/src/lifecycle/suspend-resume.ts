// Suspend and resume: a VM's memory, devices and disk saved durably and its QEMU gone (no CPU, no RAM),
// then brought back exactly as it was. A failed save leaves the VM RUNNING; a resume that fails for a
// transient reason leaves it SUSPENDED; only a state that cannot be loaded makes it FAILED. The service
// (microvm-service.ts) runs these one at a time per VM and times them.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CapsuleError, ErrorCode, type SuspendStep } from '@capsule/protocol';
import { assertTransition } from '../store/states.js';
import type { MicroVMRecord } from '../store/types.js';
import { RESTORE_LOAD } from '../vmm/machine.js';
import { StepTimer } from '../vmm/step-timer.js';
import type { SuspendedFiles, Vm } from '../vmm/vm.js';
import { launchOptions } from './boot.js';
import { ensureUid } from './jail-ops.js';
import { resolveSource } from './launch-source.js';
import { withNetwork } from './network-ops.js';
import { suspendDirOf, suspendFilesOf } from './recovery.js';
import { fetchHere, holdHere, lowerLayerOf, resumableHere, takeOver, unhold } from './take-over.js';
import type { LifecycleCore } from './core.js';

/** RUNNING → SUSPENDING → SUSPENDED. If the save fails (disk full…) the VM goes back to RUNNING untouched. */
export async function suspendVm(ctx: LifecycleCore, tenantId: string, id: string): Promise<MicroVMRecord> {
  const steps = new StepTimer();
  const record = await ctx.getHere(tenantId, id, 'suspend');
  const machine = ctx.running.get(id);
  assertTransition(id, record.state, 'SUSPENDING', 'suspend');
  ctx.deps.disk.check(`suspend MicroVM ${id} (it is still RUNNING)`); // before anything changes: it stays RUNNING
  await ctx.transition(record, 'SUSPENDING', 'suspend');
  if (!machine) {
    await ctx.fail(id, 'no VM process was found to suspend');
    throw new CapsuleError(
      ErrorCode.SUSPEND_FAILED,
      `cannot suspend MicroVM ${id}: its VM process is gone; it is now FAILED`,
    );
  }
  const dir = suspendDirOf(ctx.suspendedDir, id);
  // root's: a jailed QEMU sees only its own files, bind-mounted, never these directories
  fs.mkdirSync(ctx.suspendedDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  steps.done('record');
  await ctx.imageHook(record, machine, 'suspend');
  steps.done('hook');
  let saved: SuspendedFiles;
  try {
    saved = await machine.suspend(dir, { atStep: ctx.deps.config.testHaltSuspend ? haltAt(ctx) : undefined });
    steps.done('vm');
  } catch (err) {
    if (machine.isRunning) {
      await ctx.deps.store.transition(id, 'SUSPENDING', 'RUNNING');
      throw new CapsuleError(
        ErrorCode.SUSPEND_FAILED,
        `could not suspend MicroVM ${id}; it is still RUNNING: ${(err as Error).message}`,
        { cause: err },
      );
    }
    ctx.running.forget(id);
    await machine.stop().catch(() => undefined); // its exit may not have been seen yet: nothing else will clean up
    await ctx.fail(id, `suspend failed after the VM stopped: ${(err as Error).message}`);
    throw new CapsuleError(ErrorCode.SUSPEND_FAILED, `could not suspend MicroVM ${id}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  ctx.running.forget(id);
  ctx.deps.storage.forget(record.tenantId); // its memory is on disk now
  // durable now: QEMU's exit and the namespace's release follow the answer, and the next operation on
  // this VM waits for them (settle); the record names both until they are gone (recovery.ts)
  const suspended = await ctx.deps.store.transition(
    id,
    'SUSPENDING',
    'SUSPENDED',
    { suspendedAt: new Date().toISOString() },
    { durationMs: steps.elapsedMs() },
  );
  steps.done('store');
  ctx.suspendedStates?.publishLater(suspended!, dir); // any host can resume it once published
  ctx.settle(
    id,
    saved.stopped.then(async () => {
      await ctx.deps.networks.release(id, record.netSlot); // a suspended VM holds no namespace
      await ctx.deps.store.updateMicroVM(id, { qemuPid: null, netSlot: null });
    }),
  );
  // RAM pages written vs left to the base snapshot (null: all of RAM was written)
  ctx.logOf(record).info('MicroVM suspended', {
    ramPagesWritten: saved.ram?.pagesKept ?? null,
    ramPagesFromBase: saved.ram?.pagesDropped ?? null,
    stepsMs: { ...steps.ms, vmSteps: saved.stepsMs },
  });
  return suspended!;
}

/** A suspend that waits at the configured step (CAPSULE_TEST_HALT_SUSPEND), so a test can kill something there. */
function haltAt(ctx: LifecycleCore): (step: SuspendStep) => Promise<void> {
  const halt = ctx.deps.config.testHaltSuspend!;
  return async (step) => {
    if (step !== halt.step) return;
    ctx.deps.log.warn('suspend halted for a test', { step, ms: halt.ms });
    await sleep(halt.ms);
  };
}

/** SUSPENDED → RUNNING: same memory, processes and files. A transient failure leaves it SUSPENDED. */
export async function resumeVm(ctx: LifecycleCore, tenantId: string, id: string): Promise<MicroVMRecord> {
  const steps = new StepTimer();
  let record = await resumableHere(ctx, tenantId, id);
  assertTransition(id, record.state, 'RUNNING', 'resume');
  if (record.state !== 'SUSPENDED')
    throw new CapsuleError(ErrorCode.INVALID_STATE, `cannot resume MicroVM ${id}: it is ${record.state}`);
  const moving = record.hostId !== null && record.hostId !== ctx.deps.config.hostId;
  const { statePath, diskPath } = suspendFilesOf(ctx.suspendedDir, id);
  const missing = moving ? [] : [statePath, diskPath].filter((f) => !fs.existsSync(f));
  // gone from this host's disk but published: fetched back
  const refetch = missing.length > 0 && Boolean(record.suspendedBlob) && ctx.suspendedStates !== null;
  if (missing.length > 0 && !refetch) {
    await ctx.fail(id, `its suspended state is gone (missing ${missing.map((f) => path.basename(f)).join(', ')})`);
    throw new CapsuleError(
      ErrorCode.RESUME_FAILED,
      `cannot resume MicroVM ${id}: its suspended state is missing; it is now FAILED`,
    );
  }
  let machine: Vm;
  let shared: string | null = null; // where its published state is, while this resume holds it on this host
  const release = await ctx.quotas.admit(record.tenantId, record);
  steps.done('record');
  try {
    const source = await resolveSource(
      ctx.deps.runtimes,
      ctx.deps.images,
      record.tenantId,
      record.imageName,
      record.imageVersion ?? undefined,
    );
    steps.done('source');
    if (moving) record = await takeOver(ctx, record, lowerLayerOf(source));
    else if (refetch) await fetchHere(ctx, record, lowerLayerOf(source), record.jailUid);
    if (moving || refetch) steps.done('fetch');
    shared = await holdHere(ctx, record);
    record = await ensureUid(ctx.deps.jailer, ctx.deps.store, record, diskPath);
    machine = await withNetwork(ctx.netDeps, record, (netns) => {
      steps.done('network');
      return ctx.deps.hypervisor.launch({
        ...launchOptions(ctx.bootDeps, record, source, netns),
        restore: { kind: 'suspended', statePath, diskPath },
      });
    });
    steps.done('vm');
  } catch (err) {
    release();
    if (err instanceof CapsuleError && err.step === RESTORE_LOAD) {
      ctx.suspendedStates?.dropLater(shared);
      await ctx.fail(id, `its suspended state could not be loaded: ${err.message}`);
      throw new CapsuleError(
        ErrorCode.RESUME_FAILED,
        `cannot resume MicroVM ${id}: its suspended state is corrupt; it is now FAILED`,
        { cause: err },
      );
    }
    if (shared !== null) await unhold(ctx, record, shared);
    throw new CapsuleError(
      ErrorCode.RESUME_FAILED,
      `could not resume MicroVM ${id}; it is still SUSPENDED and can be resumed again: ${(err as Error).message}`,
      { cause: err },
    );
  }
  // stale from now on (the disk stays as the live overlay): removed after the answer, before its next suspend
  ctx.settle(id, fs.promises.rm(statePath, { force: true }));
  const running = await ctx.deps.store.transition(
    id,
    'SUSPENDED',
    'RUNNING',
    { qemuPid: machine.pid, suspendedAt: null, suspendedBlob: null, lastActivityAt: new Date().toISOString() },
    { durationMs: steps.elapsedMs() },
  );
  ctx.suspendedStates?.dropLater(shared); // its next suspend publishes anew
  release();
  ctx.activity.touch(id);
  ctx.running.adopt(record, machine);
  steps.done('store');
  await ctx.imageHook(record, machine, 'resume');
  steps.done('hook');
  ctx.logOf(record).info('MicroVM resumed', { stepsMs: { ...steps.ms, vmSteps: machine.startStepsMs } });
  return running!;
}
