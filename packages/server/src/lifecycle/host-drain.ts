// A draining host moves its MicroVMs away: a cold migration, one VM at a time. Each RUNNING VM is suspended
// here, its state published to the shared blob store (suspended-transfer.ts), and resumed on the host placement
// picks, asked by a request this host signs with the cluster key (node-signature.ts) in the VM's tenant's name;
// that host fetches the state and takes the VM over (take-over.ts). Memory, processes and files go with it; its
// endpoint follows (requests go to its host). A SUSPENDED VM whose state is only here is published, so it can
// resume anywhere. The host learns it drains at its lease renewal (host-lease.ts); `undrain` stops the moves.
// A VM that cannot move stays as it is (SUSPENDED and published, or RUNNING here) and is reported, tried once per
// drain: nothing is lost.
import { errorCodeOf } from '@capsule/protocol';
import type { Logger } from '../log.js';
import { FORWARDED_BY, type NodeSignatures } from '../node-signature.js';
import type { MicroVMRecord, Store } from '../store/types.js';
import { rankHosts, refusedForRoom } from './placement.js';
import { LIVE_STATES } from '../store/states.js';

const RESUME_TIMEOUT_MS = 120_000;

export interface HostDrainDeps {
  store: Store;
  hostId: string;
  log: Logger;
  nodes: NodeSignatures;
  suspend(tenantId: string, id: string): Promise<MicroVMRecord>;
  /** Its suspended state published (awaiting a publish under way): whether it is. */
  publish(record: MicroVMRecord): Promise<boolean>;
  /** A VM another host took: what it held here (its uid, its suspended files) goes. */
  forgetMoved(record: MicroVMRecord): Promise<void>;
}

export class HostDrain {
  private moving: Promise<void> | null = null;
  private stopped = false;
  /** VMs this drain tried and could not move: not tried again until the next drain. */
  private readonly tried = new Set<string>();

  constructor(private readonly deps: HostDrainDeps) {}

  /** This host's state as its lease renewal read it: draining starts the moves (once at a time). */
  onState(state: string): void {
    if (state !== 'draining') {
      this.tried.clear();
      return;
    }
    if (this.stopped) return;
    this.moving ??= this.moveAll()
      .catch((err: Error) => this.deps.log.error('draining stopped on an error', { error: err.message }))
      .finally(() => {
        this.moving = null;
      });
  }

  /**
   * No further moves (at shutdown). A move under way is not waited for: its VM is SUSPENDED and published, or
   * being resumed by the host that takes it; what it left here goes at this host's next start (recovery.ts).
   */
  stop(): void {
    this.stopped = true;
  }

  private async stillDraining(): Promise<boolean> {
    if (this.stopped) return false;
    return (await this.deps.store.listHosts()).find((h) => h.id === this.deps.hostId)?.state === 'draining';
  }

  private async moveAll(): Promise<void> {
    const { store, hostId, log } = this.deps;
    const started = Date.now();
    let moved = 0;
    while (await this.stillDraining()) {
      const mine = await store.listMicroVMsInStates(['RUNNING', 'SUSPENDED'], hostId);
      const next = mine.find((r) => !this.tried.has(r.id) && (r.state === 'RUNNING' || r.suspendedBlob === null));
      if (!next) break;
      this.tried.add(next.id);
      try {
        if (await this.moveOne(next)) moved++;
      } catch (err) {
        log.warn('could not move a MicroVM off this draining host', { id: next.id, error: (err as Error).message });
      }
    }
    if (moved > 0) log.info('drained', { hostId, moved, ms: Date.now() - started });
  }

  /** A RUNNING VM suspended, published and resumed elsewhere (true); a SUSPENDED one only published (false). */
  private async moveOne(record: MicroVMRecord): Promise<boolean> {
    const suspended = record.state === 'RUNNING' ? await this.deps.suspend(record.tenantId, record.id) : record;
    if (!(await this.deps.publish(suspended)))
      throw new Error('its state could not be published; it stays SUSPENDED on this host');
    if (record.state !== 'RUNNING') return false;
    const asked = await this.resumeElsewhere(suspended).catch((err: Error) => err);
    // a request for it may have resumed it elsewhere first (any node places it: its host drains)
    const to = (await this.deps.store.getMicroVM(record.id))?.hostId;
    if (!to || to === this.deps.hostId) throw asked instanceof Error ? asked : new Error(`host ${asked} lost it`);
    await this.deps.forgetMoved(suspended);
    this.deps.log.info('moved a MicroVM off this draining host', { id: record.id, toHostId: to });
    return true;
  }

  /** Ask the hosts placement ranks, in order, to resume it; the one that did. */
  private async resumeElsewhere(record: MicroVMRecord): Promise<string> {
    const { store, hostId, nodes } = this.deps;
    const [hosts, usage] = await Promise.all([store.listHosts(), store.hostUsage(LIVE_STATES)]);
    const ranked = rankHosts(hosts, usage).filter((h) => h.id !== hostId);
    if (ranked.length === 0) throw new Error('no other host is ready with room');
    const pathAndQuery = `/v1/microvms/${encodeURIComponent(record.id)}/resume`;
    let last = '';
    for (const host of ranked) {
      const answer = await fetch(new URL(pathAndQuery, host.advertiseUrl), {
        method: 'POST',
        headers: { ...nodes.sign('POST', pathAndQuery, hostId, record.tenantId), [FORWARDED_BY]: hostId },
        signal: AbortSignal.timeout(RESUME_TIMEOUT_MS),
      }).catch((err: Error) => err);
      if (answer instanceof Error) {
        last = `host ${host.id} did not answer: ${answer.message}`; // the next may
        continue;
      }
      const body = await answer.text();
      if (answer.ok) return host.id;
      last = `host ${host.id} answered ${answer.status}: ${body.slice(0, 300)}`;
      if (!refusedForRoom(answer.status, errorCodeOf(body))) break;
    }
    throw new Error(`no host resumed it (${last}); it stays SUSPENDED, resumable anywhere`);
  }
}
