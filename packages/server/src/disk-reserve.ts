// The host keeps a free-space reserve on the filesystems Capsule writes to (the data dir: overlays,
// suspended state, uploads; the cache: snapshots): while free space on one is under it, launches,
// builds and suspends are refused with 507 INSUFFICIENT_STORAGE (a refused suspend leaves its VM
// RUNNING), so a full disk is met by a clear refusal, not by ENOSPC halfway through a write.
import fs from 'node:fs';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

export interface DiskReserveConfig {
  /** The reserve is the smaller of these: a fixed amount, or a share of the filesystem's size. */
  mib: number;
  percent: number;
}

export const DEFAULT_DISK_RESERVE: DiskReserveConfig = { mib: 5 * 1024, percent: 10 };

const MIB = 1024 * 1024;

/** Free bytes (for an unprivileged writer) and total bytes of the filesystem holding `dir`. */
function space(dir: string): { freeBytes: number; totalBytes: number } | null {
  try {
    const s = fs.statfsSync(dir);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch {
    return null; // not there yet: nothing written there either
  }
}

export class DiskReserve {
  constructor(
    private readonly dirs: string[],
    private readonly reserve: DiskReserveConfig,
  ) {}

  /** The first filesystem under its reserve, or null if every one has room. */
  shortfall(): { path: string; freeMib: number; reserveMib: number } | null {
    for (const dir of this.dirs) {
      const s = space(dir);
      if (!s) continue;
      const reserveBytes = Math.min(this.reserve.mib * MIB, (s.totalBytes * this.reserve.percent) / 100);
      if (s.freeBytes >= reserveBytes) continue;
      return { path: dir, freeMib: Math.floor(s.freeBytes / MIB), reserveMib: Math.ceil(reserveBytes / MIB) };
    }
    return null;
  }

  /** Throw INSUFFICIENT_STORAGE if any filesystem is under its reserve; `action` names what was refused. */
  check(action: string): void {
    const short = this.shortfall();
    if (!short) return;
    throw new CapsuleError(
      ErrorCode.INSUFFICIENT_STORAGE,
      `cannot ${action}: ${short.freeMib} MiB free on the host's disk at ${short.path}, under its ` +
        `${short.reserveMib} MiB reserve`,
      { details: short },
    );
  }
}
