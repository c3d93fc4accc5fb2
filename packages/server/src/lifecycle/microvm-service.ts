// MicroVM lifecycle: launch, look up, exec, terminate, and react to a VM dying underneath us.
// Owns the id → Machine map; every state change is validated (states.ts) and persisted first.
import path from 'node:path';
import type { Duplex } from 'node:stream';
import fs from 'node:fs';
import {
  CapsuleError,
  ErrorCode,
  resolveNetworkPolicy,
  type EgressLogEntry,
  type MicroVMUsage,
  type ExecRequest,
  type NetworkPolicyRequest,
  type PtySize,
  type MicroVMState,
  type RunMicroVMRequest,
} from '@capsule/protocol';
import type { CapsuleConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { ListFilter, MicroVMRecord, Store } from '../store/types.js';
import type { AgentClient, ExecHandle, ExecIo } from '../vmm/agent-client.js';
import type { AcceleratorDecision } from '../vmm/accelerator.js';
import { RESTORE_LOAD, serialTail } from '../vmm/machine.js';
import type { Hypervisor, SuspendedFiles, Vm } from '../vmm/vm.js';
import type { Jailer } from '../jail/jailer.js';
import { ensureUid, machineUsage, usageByTenant } from './jail-ops.js';
import { assertTransition, FAILABLE_STATES } from '../store/states.js';
import { Activity, PolicySweeper } from './policy-sweeper.js';
import { QuotaGate } from './quotas.js';
import { LaunchRate, SessionLimits } from './limits.js';
import type { DiskReserve } from '../disk-reserve.js';
import type { StorageMeter } from './storage-quota.js';
import type { Metrics } from '../observability/metrics.js';
import { resolveSource, type LaunchSourceDeps } from './launch-source.js';
import { appLogTail } from '../images/app-start.js';
import { pendingRecord } from './records.js';
import { notifyHook } from '../images/hooks.js';
import { recoverMicroVMs, suspendDirOf, suspendFilesOf, type SuspendFiles } from './recovery.js';
import { launchOptions, startMachine, type BootDeps } from './boot.js';
import type { ReadySnapshots } from '../snapshots/ready-snapshots.js';
import type { EgressLogs } from '../network/egress-log.js';
import { checkTenantPolicy } from '../network/policy.js';
import { changeNetwork, withNetwork, type NetworkDeps, type VmNetworkPort } from './network-ops.js';
import { GuestSessions } from './guest-sessions.js';
import { LostVms } from './lost-vms.js';
import { DiskPauses } from './disk-pauses.js';

/** How long a shutdown waits for suspends and resumes in flight. */
const SHUTDOWN_WAIT_MS = 60_000;

export interface ServiceDeps {
  config: CapsuleConfig;
  store: Store;
  runtimes: LaunchSourceDeps['runtimes'];
  accelerator: AcceleratorDecision;
  /** Every QEMU's jail: its uid (recorded with the VM), mount namespace, cgroup. */
  jailer: Jailer;
  snapshots: ReadySnapshots | null;
  images: LaunchSourceDeps['images'];
  metrics: Metrics;
  log: Logger;
  /** Every MicroVM's namespace, egress policy and resolver (network/). */
  networks: VmNetworkPort;
  egressLogs: EgressLogs;
  /** The free-space reserve launches and suspends are checked against. */
  disk: DiskReserve;
  /** Tenants' storage quotas: a launch is refused while its tenant is at or over its own. */
  storage: StorageMeter;
  /** Starts and takes back VMs: QEMU (vmm/hypervisor.ts), or a fake in unit tests. */
  hypervisor: Hypervisor;
}

export class MicroVMService {
  private readonly machines = new Map<string, Vm>();
  /** The tenant of each VM in `machines` (per-tenant usage). */
  private readonly tenantOf = new Map<string, string>();
  private readonly activity = new Activity();
  private readonly sweeper: PolicySweeper;
  private readonly quotas: QuotaGate;
  private readonly launchRate: LaunchRate;
  private readonly bootDeps: BootDeps;
  private readonly netDeps: NetworkDeps;
  private readonly guestSessions: GuestSessions;
  private readonly losses: LostVms;
  private readonly diskPauses: DiskPauses;
  /** The port the API (and the endpoints) listen on, once known. */
  publicPort = 0;
  /** Suspends and resumes under way: a second explicit one is refused, a request waiting on one waits. */
  private readonly busy = new Map<string, Promise<unknown>>();
  private readonly vmsDir: string;
  private readonly suspendedDir: string;

  constructor(private readonly deps: ServiceDeps) {
    this.vmsDir = path.join(deps.config.dataDir, 'vms');
    this.suspendedDir = path.join(deps.config.dataDir, 'suspended');
    this.quotas = new QuotaGate(deps.store, deps.config.defaultQuotas);
    this.launchRate = new LaunchRate(deps.config.apiLimits);
    this.guestSessions = new GuestSessions({
      sessions: new SessionLimits(deps.config.apiLimits),
      activity: this.activity,
      metrics: deps.metrics,
      networks: deps.networks,
      endpointDirect: deps.config.endpointDirect,
      agentFor: (tenantId, id, action) => this.agentFor(tenantId, id, action),
    });
    this.diskPauses = new DiskPauses(deps.disk, deps.log, (id) => this.busy.has(id));
    this.losses = new LostVms(deps.store, deps.log, (id, reason) => this.fail(id, reason));
    this.bootDeps = { ...deps, vmsDir: this.vmsDir };
    this.netDeps = { networks: deps.networks, store: deps.store, privateAllow: deps.config.egressPrivateAllow };
    this.sweeper = new PolicySweeper(
      deps.store,
      this.activity,
      {
        retry: () => this.losses.retry(),
        isBusy: (id) => this.busy.has(id),
        suspend: (t, id) => this.suspend(t, id),
        terminate: (t, id) => this.terminate(t, id),
      },
      deps.log,
    );
  }

  /** Log lines about one VM carry its id and tenant. */
  private logOf(vm: { id: string; tenantId: string | null }): Logger {
    return this.deps.log.child({ microvmId: vm.id, tenantId: vm.tenantId });
  }

  private suspendDirOf(id: string): string {
    return suspendDirOf(this.suspendedDir, id);
  }

  private suspendFilesOf(id: string): SuspendFiles {
    return suspendFilesOf(this.suspendedDir, id);
  }

  private async exclusive<T>(id: string, action: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(id))
      throw new CapsuleError(
        ErrorCode.INVALID_STATE,
        `cannot ${action} MicroVM ${id}: another suspend or resume of it is in progress`,
      );
    const run = fn();
    this.busy.set(id, run);
    try {
      return await run;
    } finally {
      this.busy.delete(id);
    }
  }

  /**
   * RUNNING → SUSPENDING → SUSPENDED: memory, devices and disk saved durably, QEMU gone (no CPU, no RAM).
   * If the save fails (disk full…) the VM goes back to RUNNING untouched and the error says why.
   */
  suspend(tenantId: string, id: string): Promise<MicroVMRecord> {
    return this.deps.metrics.time(this.deps.metrics.suspendSeconds, () => this.suspendNow(tenantId, id));
  }

  private suspendNow(tenantId: string, id: string): Promise<MicroVMRecord> {
    return this.exclusive(id, 'suspend', async () => {
      const record = await this.get(tenantId, id);
      const machine = this.machines.get(id);
      assertTransition(id, record.state, 'SUSPENDING', 'suspend');
      this.deps.disk.check(`suspend MicroVM ${id} (it is still RUNNING)`); // before anything changes: it stays RUNNING
      await this.transition(record, 'SUSPENDING', 'suspend');
      if (!machine) {
        await this.fail(id, 'no VM process was found to suspend');
        throw new CapsuleError(
          ErrorCode.SUSPEND_FAILED,
          `cannot suspend MicroVM ${id}: its VM process is gone; it is now FAILED`,
        );
      }
      const dir = this.suspendDirOf(id);
      // root's: a jailed QEMU sees only its own files, bind-mounted, never these directories
      fs.mkdirSync(this.suspendedDir, { recursive: true, mode: 0o700 });
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      await this.imageHook(record, machine, 'suspend');
      let saved: SuspendedFiles;
      try {
        saved = await machine.suspend(dir);
      } catch (err) {
        if (machine.isRunning) {
          await this.deps.store.transition(id, 'SUSPENDING', 'RUNNING');
          throw new CapsuleError(
            ErrorCode.SUSPEND_FAILED,
            `could not suspend MicroVM ${id}; it is still RUNNING: ${(err as Error).message}`,
            { cause: err },
          );
        }
        this.forgetMachine(id);
        await machine.stop().catch(() => undefined); // its exit may not have been seen yet: nothing else will clean up
        await this.fail(id, `suspend failed after the VM stopped: ${(err as Error).message}`);
        throw new CapsuleError(ErrorCode.SUSPEND_FAILED, `could not suspend MicroVM ${id}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      this.forgetMachine(id);
      this.deps.storage.forget(record.tenantId); // its memory is on disk now
      await this.deps.networks.release(id, record.netSlot); // a suspended VM holds no namespace
      // RAM pages written vs left to the base snapshot (null: all of RAM was written)
      this.logOf(record).info('MicroVM suspended', {
        ramPagesWritten: saved.ram?.pagesKept ?? null,
        ramPagesFromBase: saved.ram?.pagesDropped ?? null,
      });
      return (await this.deps.store.transition(id, 'SUSPENDING', 'SUSPENDED', {
        qemuPid: null,
        netSlot: null,
        suspendedAt: new Date().toISOString(),
      }))!;
    });
  }

  /** SUSPENDED → RUNNING: same memory, processes and files. A transient failure leaves it SUSPENDED. */
  async resume(tenantId: string, id: string): Promise<MicroVMRecord> {
    this.launchRate.check(tenantId, 'resume');
    return this.deps.metrics.time(this.deps.metrics.resumeSeconds, () => this.resumeNow(tenantId, id));
  }

  private resumeNow(tenantId: string, id: string): Promise<MicroVMRecord> {
    return this.exclusive(id, 'resume', async () => {
      let record = await this.get(tenantId, id);
      assertTransition(id, record.state, 'RUNNING', 'resume');
      if (record.state !== 'SUSPENDED')
        throw new CapsuleError(ErrorCode.INVALID_STATE, `cannot resume MicroVM ${id}: it is ${record.state}`);
      const { statePath, diskPath } = this.suspendFilesOf(id);
      const missing = [statePath, diskPath].filter((f) => !fs.existsSync(f));
      if (missing.length > 0) {
        await this.fail(id, `its suspended state is gone (missing ${missing.map((f) => path.basename(f)).join(', ')})`);
        throw new CapsuleError(
          ErrorCode.RESUME_FAILED,
          `cannot resume MicroVM ${id}: its suspended state is missing; it is now FAILED`,
        );
      }
      let machine: Vm;
      const release = await this.quotas.admit(record.tenantId, record);
      try {
        record = await ensureUid(this.deps.jailer, this.deps.store, record, diskPath);
        const source = await resolveSource(
          this.deps.runtimes,
          this.deps.images,
          record.tenantId,
          record.imageName,
          record.imageVersion ?? undefined,
        );
        machine = await withNetwork(this.netDeps, record, (netns) =>
          this.deps.hypervisor.launch({
            ...launchOptions(this.bootDeps, record, source, netns),
            restore: { kind: 'suspended', statePath, diskPath },
          }),
        );
      } catch (err) {
        release();
        if (err instanceof CapsuleError && err.step === RESTORE_LOAD) {
          await this.fail(id, `its suspended state could not be loaded: ${err.message}`);
          throw new CapsuleError(
            ErrorCode.RESUME_FAILED,
            `cannot resume MicroVM ${id}: its suspended state is corrupt; it is now FAILED`,
            { cause: err },
          );
        }
        throw new CapsuleError(
          ErrorCode.RESUME_FAILED,
          `could not resume MicroVM ${id}; it is still SUSPENDED and can be resumed again: ${(err as Error).message}`,
          { cause: err },
        );
      }
      fs.rmSync(statePath, { force: true }); // stale from now on; the disk stays as the live overlay
      const running = await this.deps.store.transition(id, 'SUSPENDED', 'RUNNING', {
        qemuPid: machine.pid,
        suspendedAt: null,
        lastActivityAt: new Date().toISOString(),
      });
      release();
      this.activity.touch(id);
      this.adopt(record, machine);
      await this.imageHook(record, machine, 'resume');
      this.logOf(record).info('MicroVM resumed');
      return running!;
    });
  }

  /** What a running VM uses now; null when not running or unjailed. */
  usageOf(id: string): MicroVMUsage | null {
    return machineUsage(this.machines.get(id));
  }

  /** Running VMs' usage summed per tenant (the /metrics gauges). */
  usageByTenant(): Map<string, MicroVMUsage> {
    return usageByTenant([...this.tenantOf].map(([id, tenantId]) => ({ tenantId, usage: this.usageOf(id) })));
  }

  /** At start-up: take back what the previous server left (recovery.ts). */
  recover(): Promise<void> {
    return recoverMicroVMs({
      store: this.deps.store,
      log: this.deps.log,
      suspendedDir: this.suspendedDir,
      networks: this.deps.networks,
      jailer: this.deps.jailer,
      hypervisor: this.deps.hypervisor,
      adopt: (record, machine) => this.adopt(record, machine),
    });
  }

  async run(tenantId: string, request: RunMicroVMRequest): Promise<MicroVMRecord> {
    this.launchRate.check(tenantId, 'launch');
    this.deps.disk.check('launch a MicroVM');
    await this.deps.storage.check(tenantId, 'launch a MicroVM'); // its disk overlay grows from here
    return this.deps.metrics.time(
      this.deps.metrics.launchSeconds,
      () => this.launch(tenantId, request),
      (vm) => ({ launched_from: vm.launchedFrom ?? 'none' }),
    );
  }

  private async launch(tenantId: string, request: RunMicroVMRequest): Promise<MicroVMRecord> {
    const { config, store, runtimes, accelerator } = this.deps;
    const source = await resolveSource(runtimes, this.deps.images, tenantId, request.imageName, request.imageVersion);
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
      vmsDir: this.vmsDir,
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
      record.jailUid = this.deps.jailer.claimUid(id);
    } catch (err) {
      jailError = err;
    }
    try {
      const release = await this.quotas.admit(tenantId, record);
      try {
        await store.insertMicroVM(record);
      } finally {
        release(); // from here the PENDING record counts
      }
    } catch (err) {
      this.deps.jailer.releaseUid(record.jailUid, id); // no record holds it
      throw err;
    }
    this.logOf(record).info('launching MicroVM', { image: record.imageName, accelerator: accelerator.accelerator });
    let machine: Vm;
    let launchedFrom: 'boot' | 'snapshot';
    try {
      if (jailError) throw jailError;
      ({ machine, launchedFrom } = await withNetwork(this.netDeps, record, (netns) =>
        startMachine(this.bootDeps, record, source, netns, request.runHookPayload),
      ));
    } catch (err) {
      const reason = err instanceof CapsuleError ? `${err.code}: ${err.message}` : String(err);
      await store.transition(id, ['PENDING', 'TERMINATING'], 'FAILED', {
        failureReason: reason,
        qemuPid: null,
        netSlot: null,
      }); // TERMINATING: terminated while it booted
      this.deps.jailer.releaseUid(record.jailUid, id); // the failed launch removed its files
      this.logOf(record).error('MicroVM launch failed', { reason: reason.split('\n')[0] });
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
      await this.finishTermination(id);
      return (await store.getMicroVM(id))!;
    }
    this.adopt(record, machine);
    return running;
  }

  /** An image's app hears about its VM's suspend, resume and terminate (hooks.ts); never fatal. */
  private async imageHook(record: MicroVMRecord, machine: Vm, name: 'suspend' | 'resume' | 'terminate'): Promise<void> {
    if (record.imageVersion === null || this.diskPauses.isPaused(record.id)) return; // a paused guest cannot answer
    const version = await this.deps.store.getImageVersion(record.tenantId, record.imageName, record.imageVersion);
    if (version) await notifyHook(machine.agent, version.plan, name, this.deps.log, record.id);
  }

  /** Track a started VM: unexpected exits mark it FAILED. */
  private adopt(record: Pick<MicroVMRecord, 'id' | 'tenantId'>, machine: Vm): void {
    this.machines.set(record.id, machine);
    this.tenantOf.set(record.id, record.tenantId);
    this.diskPauses.watch(record.id, machine);
    // a background path: a store that is down now must not become an unhandled rejection (an exit)
    machine.onUnexpectedExit(
      (reason) =>
        void this.onMachineLost(record.id, reason).catch((err: Error) =>
          this.logOf(record).error('cleanup of a lost VM failed', { error: err.message }),
        ),
    );
  }

  /** Stop tracking a VM's machine (it stopped, or is stopping). */
  private forgetMachine(id: string): void {
    this.machines.delete(id);
    this.tenantOf.delete(id);
    this.diskPauses.forget(id);
  }

  /** A new egress policy, in force within a second for a running VM (a suspended one gets it on resume). */
  async updateNetwork(tenantId: string, id: string, input: NetworkPolicyRequest): Promise<MicroVMRecord> {
    return changeNetwork(this.netDeps, await this.get(tenantId, id), input);
  }

  async networkLog(tenantId: string, id: string, limit?: number): Promise<EgressLogEntry[]> {
    await this.get(tenantId, id);
    return this.deps.egressLogs.read(id, limit);
  }

  /** → FAILED with a reason; a failed VM holds nothing, so its saved files and namespace go too. */
  private async fail(id: string, failureReason: string): Promise<void> {
    fs.rmSync(this.suspendDirOf(id), { recursive: true, force: true });
    const record = await this.deps.store.getMicroVM(id);
    if (record) this.deps.storage.forget(record.tenantId);
    this.deps.jailer.releaseUid(record?.jailUid ?? null, id); // its files are gone
    await this.deps.networks.release(id, record?.netSlot ?? null);
    await this.deps.store.transition(id, FAILABLE_STATES, 'FAILED', { failureReason, qemuPid: null, netSlot: null });
    this.logOf(record ?? { id, tenantId: null }).error('MicroVM failed', { reason: failureReason.split('\n')[0] });
  }

  /** The tenant's MicroVM, or NOT_FOUND (also for another tenant's id: never reveal it exists). */
  async get(tenantId: string, id: string): Promise<MicroVMRecord> {
    const record = await this.deps.store.getMicroVM(id);
    if (!record || record.tenantId !== tenantId) throw new CapsuleError(ErrorCode.NOT_FOUND, `MicroVM ${id} not found`);
    this.activity.touch(id); // every API call for a VM is activity
    return record;
  }

  list(filter: ListFilter): Promise<MicroVMRecord[]> {
    return this.deps.store.listMicroVMs(filter);
  }

  /** The guest agent of a RUNNING MicroVM; INVALID_STATE in any other state. */
  async agentFor(tenantId: string, id: string, action: string): Promise<{ agent: AgentClient; record: MicroVMRecord }> {
    // a suspend or resume in flight (an auto-resume for a parallel request, say): wait for it first
    await this.busy.get(id)?.catch(() => undefined);
    let record = await this.get(tenantId, id);
    if (record.state === 'SUSPENDED' && record.idlePolicy.autoResumeEnabled) {
      const inflight = this.busy.get(id);
      if (inflight) await inflight.catch(() => undefined);
      else {
        this.logOf(record).info('auto-resuming MicroVM for a request', { action });
        await this.resume(tenantId, id);
      }
      record = await this.get(tenantId, id);
    }
    const machine = this.machines.get(id);
    if (record.state !== 'RUNNING' || !machine) {
      throw new CapsuleError(ErrorCode.INVALID_STATE, `cannot ${action} MicroVM ${id}: it is ${record.state}`, {
        details: { state: record.state },
      });
    }
    this.diskPauses.check(id, action); // paused by a full host disk: say so rather than hang
    return { agent: machine.agent, record };
  }

  /** A command in a RUNNING VM (guest-sessions.ts: session limits, activity, metrics). */
  exec(tenantId: string, id: string, request: ExecRequest & { pty?: PtySize }, io: ExecIo): Promise<ExecHandle> {
    return this.guestSessions.exec(tenantId, id, request, io);
  }

  /** A connection to a guest port (the endpoint proxy). */
  tunnel(tenantId: string, id: string, port: number): Promise<Duplex> {
    return this.guestSessions.tunnel(tenantId, id, port);
  }

  /** While the VM runs: its serial console (kernel, init) and, for an image, its app's output. */
  async consoleLog(tenantId: string, id: string, maxBytes: number): Promise<string> {
    const record = await this.get(tenantId, id);
    const machine = this.machines.get(id);
    if (!machine)
      throw new CapsuleError(
        ErrorCode.INVALID_STATE,
        `MicroVM ${id} is ${record.state}: its logs exist only while its VM runs`,
      );
    const console = serialTail(machine.vmDir, maxBytes);
    if (record.imageVersion === null) return console;
    return (
      `${console}${console && !console.endsWith('\n') ? '\n' : ''}--- app output ` +
      `---\n${await appLogTail(machine.agent, maxBytes)}`
    );
  }

  /** Where a MicroVM's endpoint answers (the API port, by Host name). */
  endpointFor(id: string): string {
    return `http://${id}.${this.deps.config.baseDomain}:${this.publicPort}`;
  }

  async terminate(tenantId: string, id: string): Promise<MicroVMRecord> {
    // let a suspend or resume in flight finish first: it owns the VM's files until it does
    await this.busy.get(id)?.catch(() => undefined);
    const record = await this.get(tenantId, id);
    await this.transition(record, 'TERMINATING', 'terminate');
    const machine = this.machines.get(id);
    if (!machine && record.state === 'PENDING') return (await this.deps.store.getMicroVM(id))!; // run() finishes it
    if (machine) {
      await this.imageHook(record, machine, 'terminate');
      this.forgetMachine(id);
      await machine
        .stop()
        .catch((err) => this.logOf(record).warn('cleanup after terminate reported errors', { error: String(err) }));
    }
    fs.rmSync(this.suspendDirOf(id), { recursive: true, force: true });
    return this.finishTermination(id);
  }

  /** Enforce idle policy and maximum duration every `intervalMs` (policy.ts decides; the sweeper acts). */
  startPolicySweeper(intervalMs = 1000): void {
    this.sweeper.start(intervalMs);
  }

  /** Server shutdown: let go of every VM without stopping it; the next start re-adopts them. */
  async shutdown(): Promise<void> {
    this.sweeper.stop();
    this.diskPauses.stop();
    // a suspend or resume under way finishes (and is recorded) before the store closes; bounded
    const inFlight = Promise.allSettled([...this.busy.values()]);
    await Promise.race([inFlight, new Promise((resolve) => setTimeout(resolve, SHUTDOWN_WAIT_MS).unref())]);
    await this.activity.flush(this.deps.store);
    for (const [id, machine] of this.machines) {
      machine.detach();
      this.forgetMachine(id);
    }
  }

  private async transition(record: MicroVMRecord, to: MicroVMState, action: string): Promise<MicroVMRecord> {
    assertTransition(record.id, record.state, to, action);
    const updated = await this.deps.store.transition(record.id, record.state, to);
    if (!updated) {
      const now = await this.deps.store.getMicroVM(record.id);
      throw new CapsuleError(
        ErrorCode.INVALID_STATE,
        `cannot ${action} MicroVM ${record.id}: it is ${now?.state ?? 'gone'}`,
      );
    }
    return updated;
  }

  private async finishTermination(id: string): Promise<MicroVMRecord> {
    this.activity.forget(id);
    const record = await this.deps.store.getMicroVM(id);
    if (record) this.deps.storage.forget(record.tenantId); // its files are gone
    this.deps.jailer.releaseUid(record?.jailUid ?? null, id); // its files are gone
    await this.deps.networks.release(id, record?.netSlot ?? null);
    this.deps.egressLogs.remove(id);
    const done = await this.deps.store.transition(id, 'TERMINATING', 'TERMINATED', {
      terminatedAt: new Date().toISOString(),
      qemuPid: null,
      netSlot: null,
    });
    this.logOf(record ?? { id, tenantId: null }).info('MicroVM terminated');
    return done ?? (await this.deps.store.getMicroVM(id))!; // failed meanwhile: as it is
  }

  /**
   * Its QEMU is gone without a stop(): clean up, then record it FAILED with why (the console says why a guest
   * panicked).
   */
  private async onMachineLost(id: string, reason: string): Promise<void> {
    const machine = this.machines.get(id);
    this.forgetMachine(id);
    // read the console before cleanup removes it: a guest panic explains itself there
    const console = machine ? serialTail(machine.vmDir, 1500) : '';
    await machine?.stop().catch(() => undefined);
    await this.losses.record(
      id,
      `${reason}; the VM's memory and processes are ` +
        `gone${console ? `\n--- serial console (tail) ---\n${console}` : ''}`,
    );
  }
}
