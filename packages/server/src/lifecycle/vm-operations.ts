// One suspend or resume at a time per MicroVM, and the work an operation leaves going on after it answered (a
// suspended VM's QEMU exiting, its namespace released): the VM's next operation waits for that work first.
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { Logger } from '../log.js';

export class VmOperations {
  /** Suspends and resumes under way: a second explicit one is refused, a request waiting on one waits. */
  private readonly busy = new Map<string, Promise<unknown>>();
  /** Work that goes on after an operation answered: the next one waits. */
  private readonly settling = new Map<string, Promise<void>>();

  constructor(private readonly log: Logger) {}

  /** `fn` as the VM's only suspend or resume, once its last operation settled; INVALID_STATE if one runs. */
  async exclusive<T>(id: string, action: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(id))
      throw new CapsuleError(
        ErrorCode.INVALID_STATE,
        `cannot ${action} MicroVM ${id}: another suspend or resume of it is in progress`,
      );
    const run = this.settled(id).then(fn);
    this.busy.set(id, run);
    try {
      return await run;
    } finally {
      this.busy.delete(id);
    }
  }

  isBusy(id: string): boolean {
    return this.busy.has(id);
  }

  /** The suspend or resume under way, if any. */
  inFlight(id: string): Promise<unknown> | undefined {
    return this.busy.get(id);
  }

  /** Work on the VM that goes on after its operation answered. */
  settle(id: string, work: Promise<void>): void {
    const settled: Promise<void> = work
      .catch((err: Error) => this.log.warn('releasing a VM after its operation failed', { id, error: err.message }))
      .finally(() => {
        if (this.settling.get(id) === settled) this.settling.delete(id);
      });
    this.settling.set(id, settled);
  }

  /** Resolves once what the VM's last operation left going on is done. */
  settled(id: string): Promise<void> {
    return this.settling.get(id) ?? Promise.resolve();
  }

  /** Every operation under way, then everything they left going on (at shutdown). */
  async allDone(): Promise<void> {
    await Promise.allSettled([...this.busy.values()]);
    await Promise.allSettled([...this.settling.values()]);
  }
}
