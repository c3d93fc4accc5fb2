// Activity tracking and the policy sweeper: every `intervalMs`, persist the last activity of each VM
// (so idleness survives a restart) and act on what policy.ts decides — auto-suspend an idle VM,
// terminate one suspended too long or past its maximum duration.
import type { Logger } from '../log.js';
import type { MicroVMRecord, Store } from '../store/types.js';
import { decide } from './policy.js';

/**
 * Last activity per VM (any API, exec, file or proxy call) and the work in flight in it (foreground execs, open
 * endpoint connections).
 */
export class Activity {
  private readonly lastMs = new Map<string, number>();
  private readonly execs = new Map<string, number>();

  touch(id: string): void {
    this.lastMs.set(id, Date.now());
  }

  /** Work in flight (a foreground exec, an endpoint connection) is activity until it ends. */
  begin(id: string): void {
    this.execs.set(id, (this.execs.get(id) ?? 0) + 1);
  }

  end(id: string): void {
    this.execs.set(id, (this.execs.get(id) ?? 1) - 1);
    this.touch(id);
  }

  inFlight(id: string): number {
    return this.execs.get(id) ?? 0;
  }

  forget(id: string): void {
    this.lastMs.delete(id);
    this.execs.delete(id);
  }

  /** Persist in-memory activity times; returns this host's live (RUNNING, SUSPENDED) records, up to date. */
  async flush(store: Store, hostId: string): Promise<MicroVMRecord[]> {
    const records = await store.listMicroVMsInStates(['RUNNING', 'SUSPENDED'], hostId);
    for (const record of records) {
      const seen = this.lastMs.get(record.id);
      if (seen !== undefined && (!record.lastActivityAt || Date.parse(record.lastActivityAt) < seen)) {
        record.lastActivityAt = new Date(seen).toISOString();
        await store.updateMicroVM(record.id, { lastActivityAt: record.lastActivityAt });
      }
    }
    return records;
  }
}

export interface PolicyActions {
  /** Background work that failed earlier (a store that was down): tried again every round. */
  retry(): Promise<void>;
  /** A suspend or resume of this VM is in flight: leave it alone this round. */
  isBusy(id: string): boolean;
  suspend(tenantId: string, id: string): Promise<unknown>;
  terminate(tenantId: string, id: string): Promise<unknown>;
}

/**
 * Each VM's action runs on its own: a sweep starts what policy decides and does not wait for it, so one
 * VM stuck in a hook (bounded by the hook's deadline) never delays another's suspend or terminate.
 */
export class PolicySweeper {
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
  /** VMs with a policy action under way (not decided again until it settles). */
  private readonly acting = new Set<string>();

  constructor(
    private readonly store: Store,
    /** The host whose MicroVMs it sweeps: this one's. */
    private readonly hostId: string,
    private readonly activity: Activity,
    private readonly actions: PolicyActions,
    private readonly log: Logger,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.sweep(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.actions.retry();
      const nowMs = Date.now();
      for (const record of await this.activity.flush(this.store, this.hostId)) {
        if (this.acting.has(record.id) || this.actions.isBusy(record.id)) continue;
        const action = decide({ record, nowMs, activeExecs: this.activity.inFlight(record.id) });
        if (!action) continue;
        this.log.info(`policy: ${action.kind}`, { id: record.id, reason: action.reason });
        this.acting.add(record.id);
        const act =
          action.kind === 'suspend'
            ? this.actions.suspend(record.tenantId, record.id)
            : this.actions.terminate(record.tenantId, record.id);
        void act
          .catch((err: Error) =>
            this.log.warn(`policy ${action.kind} failed`, { id: record.id, error: err.message.split('\n')[0] }),
          )
          .finally(() => this.acting.delete(record.id));
      }
    } catch (err) {
      this.log.error('policy sweep failed', { error: String(err) });
    } finally {
      this.sweeping = false;
    }
  }
}
