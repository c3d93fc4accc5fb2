// Getting a MicroVM's machine running: restore the ready snapshot of its image (app already serving)
// or runtime when one exists for its shape, else boot (and, for an image, start its app); then call
// the app's `run` hook with the launch's payload. A failed restore never fails the launch: it boots.
import path from 'node:path';
import { CapsuleError, sameShape, type VmShape } from '@capsule/protocol';
import type { CapsuleConfig } from '../config.js';
import type { Logger } from '../log.js';
import { notifyHook } from '../images/hooks.js';
import type { ReadySnapshots } from '../snapshots/ready-snapshots.js';
import type { MicroVMRecord } from '../store/types.js';
import type { AcceleratorDecision } from '../vmm/accelerator.js';
import { hostLaunchOptions, RESTORE_LOAD, type LaunchOptions, type RestoreSource } from '../vmm/machine.js';
import type { Hypervisor, Vm } from '../vmm/vm.js';
import type { Jailer } from '../jail/jailer.js';
import type { LaunchSource } from './launch-source.js';
import { startApp } from '../images/app-start.js';

export interface BootDeps {
  config: CapsuleConfig;
  accelerator: AcceleratorDecision;
  jailer: Jailer;
  snapshots: ReadySnapshots | null;
  log: Logger;
  vmsDir: string;
  hypervisor: Hypervisor;
}

export function launchOptions(
  deps: BootDeps,
  record: Pick<MicroVMRecord, 'id' | 'tenantId' | 'jailUid' | 'vcpuCount' | 'memoryMib'>,
  source: LaunchSource,
  netns: string,
): LaunchOptions {
  if (!deps.jailer.unsafe && record.jailUid === null)
    throw new Error(`MicroVM ${record.id} has no uid of its own to run as`);
  return {
    ...hostLaunchOptions(deps.config, source.runtime),
    baseDisk: source.image?.layerPath,
    vmDir: path.join(deps.vmsDir, record.id),
    vcpuCount: record.vcpuCount,
    memoryMib: record.memoryMib,
    accelerator: deps.accelerator.accelerator,
    netns,
    hostname: record.id,
    // its own uid, kept for life (null only unjailed)
    jail: deps.jailer.forVm(record.tenantId, record.id, record.jailUid ?? undefined),
  };
}

export async function startMachine(
  deps: BootDeps,
  record: MicroVMRecord,
  source: LaunchSource,
  netns: string,
  runHookPayload?: string,
): Promise<{ machine: Vm; launchedFrom: 'boot' | 'snapshot' }> {
  const { image, runtime } = source;
  const options = launchOptions(deps, record, source, netns);
  const shaped = <T extends VmShape>(s: T | null | undefined): T | null => (s && sameShape(s, record) ? s : null);
  const imageSnapshot = shaped(image?.snapshot);
  const runtimeSnapshot = image ? null : (deps.snapshots?.get(runtime.name, record) ?? null);
  if (runtimeSnapshot) deps.snapshots?.touch(runtimeSnapshot);
  const snapshot: RestoreSource | null = imageSnapshot ?? runtimeSnapshot;
  let machine: Vm;
  let launchedFrom: 'boot' | 'snapshot' = 'boot';
  if (snapshot) {
    try {
      machine = await deps.hypervisor.launch({ ...options, restore: snapshot });
      launchedFrom = 'snapshot';
    } catch (err) {
      // If a runtime snapshot's files no longer verify, discard it and rebuild it in the background.
      const snapshotAtFault =
        runtimeSnapshot !== null &&
        err instanceof CapsuleError &&
        err.step === RESTORE_LOAD &&
        !deps.snapshots!.verify(runtimeSnapshot);
      deps.log.warn('restore from ready snapshot failed; cold booting', {
        id: record.id,
        snapshot: runtimeSnapshot?.key ?? `${record.imageName}:${record.imageVersion}`,
        snapshotAtFault,
        error: String((err as Error).message),
      });
      if (snapshotAtFault) deps.snapshots!.invalidate(runtimeSnapshot);
      machine = await deps.hypervisor.launch(options);
      if (snapshotAtFault) void deps.snapshots!.ensure(runtime.name, record);
    }
  } else {
    machine = await deps.hypervisor.launch(options);
    // the first launch of a shape cold-boots; the next ones restore (built in the background)
    if (deps.snapshots && !image) void deps.snapshots.ensure(runtime.name, record);
  }
  if (image) {
    try {
      if (launchedFrom === 'boot')
        await startApp(machine.agent, image.record.plan, record.env, deps.config.appReadyTimeoutMs);
      await notifyHook(machine.agent, image.record.plan, 'run', deps.log, record.id, runHookPayload);
    } catch (err) {
      await machine.stop().catch(() => undefined);
      throw err;
    }
  }
  return { machine, launchedFrom };
}
