// VMs whose QEMU went away without a stop() are recorded FAILED. That write is a background path: if
// the store is down at that moment, the loss is kept here and tried again every sweeper round, never
// left as an unhandled rejection (which would exit the server) and never forgotten.
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';

export class LostVms {
  /** id → the failure reason not yet written. */
  private readonly unrecorded = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly fail: (id: string, failureReason: string) => Promise<void>,
  ) {}

  /** FAILED with `failureReason`, unless it already ended; on a store error, kept for retry(). Never rejects. */
  async record(id: string, failureReason: string): Promise<void> {
    try {
      const record = await this.store.getMicroVM(id);
      if (record && record.state !== 'TERMINATED' && record.state !== 'FAILED') await this.fail(id, failureReason);
      this.unrecorded.delete(id);
    } catch (err) {
      if (!this.unrecorded.has(id))
        this.log.error('could not record a lost VM yet; retrying', { id, error: (err as Error).message });
      this.unrecorded.set(id, failureReason);
    }
  }

  async retry(): Promise<void> {
    for (const [id, failureReason] of [...this.unrecorded]) await this.record(id, failureReason);
  }
}
