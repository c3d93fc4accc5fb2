// MicroVM lifecycle: launch, look up, exec, terminate, and react to a VM dying underneath us.
// Its running VMs are in running-vms.ts; a launch is launch.ts, suspend and resume suspend-resume.ts.
// Every state change is validated (states.ts) and persisted first.
import path from 'node:path';
import type { Duplex } from 'node:stream';
import fs from 'node:fs';
import {
  CapsuleError,
  ErrorCode,
  type EgressLogEntry,
  type MicroVMUsage,
  type ExecRequest,
  type NetworkPolicyRequest,
  type PtySize,
  type MicroVMState,
  type RunMicroVMRequest,
} from '@capsule/protocol';
import type { Logger } from '../log.js';
import type { ListFilter, MicroVMRecord } from '../store/types.js';
import type { AgentClient, ExecHandle, ExecIo } from '../vmm/agent-client.js';
import { serialTail } from '../vmm/machine.js';
import type { Vm } from '../vmm/vm.js';
import { assertTransition, FAILABLE_STATES } from '../store/states.js';
import { Activity, PolicySweeper } from './policy-sweeper.js';
import { HostRoom, QuotaGate } from './quotas.js';
import { LaunchRate, SessionLimits } from './limits.js';
import { appLogTail } from '../images/app-start.js';
import { notifyHook } from '../images/hooks.js';
import { onDownHost, terminateWithoutHost } from './host-gone.js';
import { recoverMicroVMs, stopGivenUpVms, suspendDirOf } from './recovery.js';
import { SuspendedStates } from './suspended-transfer.js';
import { VmOperations } from './vm-operations.js';
import { noHostReady } from './placement.js';
import { launchReadiness } from './launch-readiness.js';
import { blobCacheDir } from '../blobs/open.js';
import { RunningVms } from './running-vms.js';
import type { LifecycleCore } from './core.js';
import { resumeVm, suspendVm } from './suspend-resume.js';
import type { BootDeps } from './boot.js';
import { changeNetwork, type NetworkDeps } from './network-ops.js';
import { GuestSessions } from './guest-sessions.js';
import { LostVms } from './lost-vms.js';
import { DiskPauses } from './disk-pauses.js';
import type { ServiceDeps } from './service-deps.js';
import { launchVm } from './launch.js';
import { assertOnThisHost } from './records.js';
import { warmPoolOf, type WarmPool } from './warm-pool.js';

export type { ServiceDeps };

/** How long a shutdown waits for suspends and resumes in flight. */
const SHUTDOWN_WAIT_MS = 60_000;

export class MicroVMService {
  private readonly running: RunningVms;
  /** What a launch (launch.ts), a suspend and a resume (suspend-resume.ts) use of this service. */
  private readonly core: LifecycleCore;
  private readonly activity = new Activity();
  private readonly sweeper: PolicySweeper;
  private readonly quotas: QuotaGate;
  private readonly launchRate: LaunchRate;
  private readonly bootDeps: BootDeps;
  private readonly netDeps: NetworkDeps;
  private readonly guestSessions: GuestSessions;
  private readonly losses: LostVms;
  private readonly diskPauses: DiskPauses;
  /** Warm clones of each runtime a launch claims (warm-pool.ts); null without ready snapshots or when sized 0. */
  private readonly pool: WarmPool | null;
  /** The port the API (and the endpoints) listen on, once known. */
  publicPort = 0;
  /** One suspend or resume per VM at a time, and what each leaves going on (vm-operations.ts). */
  private readonly ops: VmOperations;
  private readonly vmsDir: string;
  private readonly suspendedDir: string;
  /** Suspended state published for other hosts (suspended-transfer.ts); null without a shared blob store. */
  readonly suspendedStates: SuspendedStates | null;

  constructor(private readonly deps: ServiceDeps) {
    this.vmsDir = path.join(deps.config.dataDir, 'vms');
    this.suspendedDir = path.join(deps.config.dataDir, 'suspended');
    this.quotas = new QuotaGate(
      deps.store,
      deps.config.defaultQuotas,
      new HostRoom(deps.store, deps.config.hostId, deps.config.hostMaxMemoryMib),
      deps.config.hostId,
    );
    this.launchRate = new LaunchRate(deps.config.apiLimits);
    this.guestSessions = new GuestSessions({
      sessions: new SessionLimits(deps.config.apiLimits),
      activity: this.activity,
      metrics: deps.metrics,
      networks: deps.networks,
      endpointDirect: deps.config.endpointDirect,
      agentFor: (tenantId, id, action) => this.agentFor(tenantId, id, action),
    });
    this.ops = new VmOperations(deps.log);
    this.diskPauses = new DiskPauses(deps.disk, deps.log, (id) => this.ops.isBusy(id));
    this.running = new RunningVms(this.diskPauses, deps.log, (id, reason) => this.onMachineLost(id, reason));
    this.losses = new LostVms(deps.store, deps.log, (id, reason) => this.fail(id, reason));
    this.bootDeps = { ...deps, vmsDir: this.vmsDir };
    this.netDeps = { networks: deps.networks, store: deps.store, privateAllow: deps.config.egressPrivateAllow };
    this.pool = warmPoolOf(deps, this.bootDeps);
    this.suspendedStates = deps.sharedBlobs
      ? new SuspendedStates({ ...deps, blobs: deps.sharedBlobs, qemuImgBinary: deps.config.qemuImgBinary })
      : null;
    this.sweeper = new PolicySweeper(
      deps.store,
      deps.config.hostId,
      this.activity,
      {
        retry: () => this.losses.retry(),
        isBusy: (id) => this.ops.isBusy(id),
        suspend: (t, id) => this.suspend(t, id),
        terminate: (t, id) => this.terminate(t, id),
      },
      deps.log,
    );
    this.core = {
      deps,
      running: this.running,
      quotas: this.quotas,
      bootDeps: this.bootDeps,
      netDeps: this.netDeps,
      activity: this.activity,
      suspendedDir: this.suspendedDir,
      pool: this.pool,
      suspendedStates: this.suspendedStates,
      get: (tenantId, id) => this.get(tenantId, id),
      getHere: (tenantId, id, action) => this.getHere(tenantId, id, action),
      transition: (record, to, action) => this.transition(record, to, action),
      fail: (id, reason) => this.fail(id, reason),
      imageHook: (record, machine, name) => this.imageHook(record, machine, name),
      logOf: (vm) => this.logOf(vm),
      vmsDir: this.vmsDir,
      finishTermination: (id) => this.finishTermination(id),
      settle: (id, work) => this.ops.settle(id, work),
    };
  }

  /** Log lines about one VM carry its id and tenant. */
  private logOf(vm: { id: string; tenantId: string | null }): Logger {
    return this.deps.log.child({ microvmId: vm.id, tenantId: vm.tenantId });
  }

  private suspendDirOf(id: string): string {
    return suspendDirOf(this.suspendedDir, id);
  }

  /**
   * RUNNING → SUSPENDING → SUSPENDED: memory, devices and disk saved durably, QEMU gone (no CPU, no RAM).
   * If the save fails (disk full…) the VM goes back to RUNNING untouched and the error says why.
   */
  suspend(tenantId: string, id: string): Promise<MicroVMRecord> {
    return this.deps.metrics.time(this.deps.metrics.suspendSeconds, () =>
      this.ops.exclusive(id, 'suspend', () => suspendVm(this.core, tenantId, id)),
    );
  }

  /** SUSPENDED → RUNNING: same memory, processes and files. A transient failure leaves it SUSPENDED. */
  async resume(tenantId: string, id: string): Promise<MicroVMRecord> {
    this.assertRunsVms();
    this.launchRate.check(tenantId, 'resume');
    return this.deps.metrics.time(this.deps.metrics.resumeSeconds, () =>
      this.ops.exclusive(id, 'resume', () => resumeVm(this.core, tenantId, id)),
    );
  }

  /** Its suspended state published for other hosts (host-drain.ts); false without a shared blob store. */
  async publishSuspended(record: MicroVMRecord): Promise<boolean> {
    return (await this.suspendedStates?.published(record, this.suspendDirOf(record.id))) ?? false;
  }

  /** A VM another host took over (host-drain.ts): its uid and suspended files here go, once its QEMU is gone. */
  async forgetMoved(record: MicroVMRecord): Promise<void> {
    await this.ops.settled(record.id);
    this.deps.jailer.releaseUid(record.jailUid, record.id);
    fs.rmSync(this.suspendDirOf(record.id), { recursive: true, force: true });
  }

  /** What this host has ready for launches (launch-readiness.ts): told with its lease, preferred by placement. */
  launchReadiness(): string[] {
    return launchReadiness(this.pool?.readyKeys() ?? [], blobCacheDir(this.deps.config.dataDir));
  }

  /** What a running VM uses now; null when not running or unjailed. */
  usageOf(id: string): MicroVMUsage | null {
    return this.running.usageOf(id);
  }

  /** Running VMs' usage summed per tenant (the /metrics gauges). */
  usageByTenant(): Map<string, MicroVMUsage> {
    return this.running.usageByTenant();
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
      hostId: this.deps.config.hostId,
      suspendedStates: this.suspendedStates,
      adopt: (record, machine) => this.running.adopt(record, machine),
    });
  }

  /** This host was given up as down while it ran: stop the VMs the store no longer has it run (host-lease.ts). */
  stopGivenUp(): Promise<void> {
    return stopGivenUpVms({
      store: this.deps.store,
      log: this.deps.log,
      networks: this.deps.networks,
      jailer: this.deps.jailer,
      running: this.running,
      suspendedDir: this.suspendedDir,
      hostId: this.deps.config.hostId,
    });
  }

  async run(tenantId: string, request: RunMicroVMRequest): Promise<MicroVMRecord> {
    this.assertRunsVms();
    this.launchRate.check(tenantId, 'launch');
    this.deps.disk.check('launch a MicroVM');
    await this.deps.storage.check(tenantId, 'launch a MicroVM'); // its disk overlay grows from here
    return this.deps.metrics.time(
      this.deps.metrics.launchSeconds,
      () => launchVm(this.core, tenantId, request),
      (vm) => ({ launched_from: vm.launchedFrom ?? 'none' }),
    );
  }

  /** A server of a cluster that runs no VM (CAPSULE_ROLE=api) sends launches and resumes to hosts: none is ready. */
  private assertRunsVms(): void {
    if (this.deps.config.role === 'api') throw noHostReady();
  }

  /** An image's app hears about its VM's suspend, resume and terminate (hooks.ts); never fatal. */
  private async imageHook(record: MicroVMRecord, machine: Vm, name: 'suspend' | 'resume' | 'terminate'): Promise<void> {
    if (record.imageVersion === null || this.diskPauses.isPaused(record.id)) return; // a paused guest cannot answer
    const version = await this.deps.store.getImageVersion(record.tenantId, record.imageName, record.imageVersion);
    if (version) await notifyHook(machine.agent, version.plan, name, this.deps.log, record.id);
  }

  /** A new egress policy, in force within a second for a running VM (a suspended one gets it on resume). */
  async updateNetwork(tenantId: string, id: string, input: NetworkPolicyRequest): Promise<MicroVMRecord> {
    return changeNetwork(this.netDeps, await this.getHere(tenantId, id, 'change the network of'), input);
  }

  async networkLog(tenantId: string, id: string, limit?: number): Promise<EgressLogEntry[]> {
    await this.getHere(tenantId, id, 'read the egress log of');
    return this.deps.egressLogs.read(id, limit);
  }

  /** → FAILED with a reason; a failed VM holds nothing, so its saved files and namespace go too. */
  private async fail(id: string, failureReason: string): Promise<void> {
    fs.rmSync(this.suspendDirOf(id), { recursive: true, force: true });
    const record = await this.deps.store.getMicroVM(id);
    if (record) this.deps.storage.forget(record.tenantId);
    this.suspendedStates?.dropLater(record?.suspendedBlob ?? null);
    this.deps.jailer.releaseUid(record?.jailUid ?? null, id); // its files are gone
    await this.deps.networks.release(id, record?.netSlot ?? null);
    await this.deps.store.transition(id, FAILABLE_STATES, 'FAILED', { failureReason, qemuPid: null, netSlot: null });
    this.logOf(record ?? { id, tenantId: null }).error('MicroVM failed', { reason: failureReason.split('\n')[0] });
  }

  /** The tenant's MicroVM when this host has it (assertOnThisHost): what every action on its VM starts with. */
  private async getHere(tenantId: string, id: string, action: string): Promise<MicroVMRecord> {
    const record = await this.get(tenantId, id);
    assertOnThisHost(record, this.deps.config.hostId, action);
    return record;
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
    await this.ops.inFlight(id)?.catch(() => undefined);
    let record = await this.get(tenantId, id);
    // another host's suspended VM may be resumed here (take-over.ts decides)
    if (record.state !== 'SUSPENDED' || !record.idlePolicy.autoResumeEnabled)
      assertOnThisHost(record, this.deps.config.hostId, action);
    if (record.state === 'SUSPENDED' && record.idlePolicy.autoResumeEnabled) {
      const inflight = this.ops.inFlight(id);
      if (inflight) await inflight.catch(() => undefined);
      else {
        this.logOf(record).info('auto-resuming MicroVM for a request', { action });
        await this.resume(tenantId, id);
      }
      record = await this.get(tenantId, id);
    }
    const machine = this.running.get(id);
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
    const record = await this.getHere(tenantId, id, 'read the logs of');
    const machine = this.running.get(id);
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
    await this.ops.inFlight(id)?.catch(() => undefined);
    await this.ops.settled(id);
    const record = await this.get(tenantId, id);
    // a down host's VM ends here; anything else only on its host
    if (await onDownHost(this.core, record)) return terminateWithoutHost(this.core, record);
    assertOnThisHost(record, this.deps.config.hostId, 'terminate');
    await this.transition(record, 'TERMINATING', 'terminate');
    const machine = this.running.get(id);
    if (!machine && record.state === 'PENDING') return (await this.deps.store.getMicroVM(id))!; // run() finishes it
    if (machine) {
      await this.imageHook(record, machine, 'terminate');
      this.running.forget(id);
      await machine
        .stop()
        .catch((err) => this.logOf(record).warn('cleanup after terminate reported errors', { error: String(err) }));
    }
    fs.rmSync(this.suspendDirOf(id), { recursive: true, force: true });
    this.suspendedStates?.dropLater(record.suspendedBlob);
    return this.finishTermination(id);
  }

  /** Enforce idle policy and maximum duration every `intervalMs` (policy.ts decides; the sweeper acts). */
  startPolicySweeper(intervalMs = 1000): void {
    this.sweeper.start(intervalMs);
  }

  /** Keep the warm pool filled from now on (after recovery: its clones take namespaces and uids). */
  startWarmPool(): void {
    this.pool?.start();
  }

  /** Server shutdown: let go of every VM without stopping it (the next start re-adopts them); warm clones stop. */
  async shutdown(): Promise<void> {
    this.sweeper.stop();
    await this.pool?.close();
    this.diskPauses.stop();
    // a suspend or resume under way finishes (and is recorded) before the store closes; bounded
    await Promise.race([this.ops.allDone(), new Promise((resolve) => setTimeout(resolve, SHUTDOWN_WAIT_MS).unref())]);
    await this.activity.flush(this.deps.store, this.deps.config.hostId);
    for (const [id, machine] of [...this.running.entries()]) {
      machine.detach();
      this.running.forget(id);
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
    if (record) this.deps.storage.forget(record.tenantId);
    this.suspendedStates?.dropLater(record?.suspendedBlob ?? null); // its files are gone
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
    const machine = this.running.get(id);
    this.running.forget(id);
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
