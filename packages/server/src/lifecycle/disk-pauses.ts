// MicroVMs that QEMU paused because the host disk filled up under their overlay. QEMU keeps the write
// that failed and pauses the guest (werror=enospc) instead of handing the guest an I/O error, so
// nothing is corrupted; left alone, though, the VM would look RUNNING while every exec hung. Here the
// pause is reported (logged, and calls into the VM answer 507 INSUFFICIENT_STORAGE saying why), and
// the VM is continued, retrying its writes, once every filesystem is back above the free-space reserve.
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { DiskReserve } from '../disk-reserve.js';
import type { Logger } from '../log.js';
import type { Vm } from '../vmm/vm.js';

/** How often paused VMs check for room again. */
const CHECK_INTERVAL_MS = 2_000;

export class DiskPauses {
  private readonly paused = new Map<string, { machine: Vm; sinceMs: number }>();
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly disk: DiskReserve,
    private readonly log: Logger,
    /** A suspend or resume owns the VM meanwhile: it is not continued under it. */
    private readonly isBusy: (id: string) => boolean,
  ) {}

  /** Follow a started (or re-adopted) VM; one already paused by a full disk is taken in at once. */
  watch(id: string, machine: Vm): void {
    machine.onDiskFull(() => this.pause(id, machine));
    void machine
      .isPausedByDiskFull()
      .then((paused) => paused && this.pause(id, machine))
      .catch(() => undefined); // its QEMU went away: its exit is handled elsewhere
  }

  /** INSUFFICIENT_STORAGE if the VM is paused by a full disk (before an exec, a file call, a tunnel). */
  check(id: string, action: string): void {
    const pause = this.paused.get(id);
    if (!pause) return;
    const short = this.disk.shortfall();
    throw new CapsuleError(
      ErrorCode.INSUFFICIENT_STORAGE,
      `cannot ${action} MicroVM ${id}: it is paused since the host's disk filled up under it ` +
        `${Math.round((Date.now() - pause.sinceMs) / 1000)} s ` +
        'ago' +
        (short ? ` (${short.freeMib} MiB free at ${short.path}, under its ${short.reserveMib} MiB reserve)` : '') +
        '; it continues, losing nothing, once space is freed',
      { details: { pausedForMs: Date.now() - pause.sinceMs, ...short } },
    );
  }

  isPaused(id: string): boolean {
    return this.paused.has(id);
  }

  /** The VM stopped (terminate, suspend, exit). */
  forget(id: string): void {
    this.paused.delete(id);
    if (this.paused.size === 0) this.stopTimer();
  }

  stop(): void {
    this.paused.clear();
    this.stopTimer();
  }

  private pause(id: string, machine: Vm): void {
    if (this.paused.has(id)) return;
    this.paused.set(id, { machine, sinceMs: Date.now() });
    this.log.error('MicroVM paused: the host disk is full under its disk; it continues once space is freed', {
      id,
      ...this.disk.shortfall(),
    });
    this.timer ??= setInterval(() => void this.retry(), CHECK_INTERVAL_MS).unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Room again on every filesystem: continue the paused VMs (a write that fails again pauses it again). */
  private async retry(): Promise<void> {
    if (this.checking || this.disk.shortfall()) return;
    this.checking = true;
    try {
      for (const [id, { machine, sinceMs }] of [...this.paused]) {
        if (this.isBusy(id)) continue;
        this.paused.delete(id);
        try {
          const continued = await machine.continueAfterDiskFull();
          this.log.info('MicroVM continued: the host disk has room again', {
            id,
            pausedMs: Date.now() - sinceMs,
            continued,
          });
        } catch (err) {
          this.log.warn('could not continue a MicroVM paused by a full disk', { id, error: (err as Error).message });
        }
      }
    } finally {
      this.checking = false;
      if (this.paused.size === 0) this.stopTimer();
    }
  }
}
