// One uid (and gid of the same number) per QEMU, from CAPSULE_UID_RANGE. No /etc/passwd entry is
// needed: QEMU is started with the numbers. A uid is claimed machine-wide by creating its claim file
// (O_EXCL), so several servers on one machine never hand out the same uid; the claim names the data
// dir and the owner (a MicroVM id, or a builder's name) and is dropped only when the owner's files are
// gone. Claims live in /run: after a reboot no QEMU runs, and start-up re-claims what its VMs recorded.
import fs from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { UidRange } from '../config-parsers.js';

export type { UidRange };

export const UID_CLAIMS_DIR = '/run/capsule/uids';

interface Claim {
  dataDir: string;
  owner: string;
}

export class UidPool {
  constructor(
    private readonly range: UidRange,
    private readonly dataDir: string,
    private readonly claimsDir = UID_CLAIMS_DIR,
  ) {
    fs.mkdirSync(claimsDir, { recursive: true, mode: 0o700 });
  }

  /** A free uid, now claimed by `owner`. JAIL_FAILED when the range is exhausted. */
  claim(owner: string): number {
    const size = this.range.last - this.range.first + 1;
    const start = randomInt(0, size); // spread out: a freed uid is not handed out again at once
    for (let i = 0; i < size; i++) {
      const uid = this.range.first + ((start + i) % size);
      if (this.tryClaim(uid, owner)) return uid;
    }
    throw new CapsuleError(
      ErrorCode.JAIL_FAILED,
      `no free uid in CAPSULE_UID_RANGE ${this.range.first}-${this.range.last}: every one is held by a VM`,
    );
  }

  /**
   * Take back a recorded uid after a restart or reboot; false if it is in the range no more or someone else holds it.
   */
  reclaim(uid: number, owner: string): boolean {
    if (uid < this.range.first || uid > this.range.last) return false;
    const held = this.holder(uid);
    if (held) return held.dataDir === this.dataDir && held.owner === owner;
    return this.tryClaim(uid, owner);
  }

  release(uid: number, owner: string): void {
    const held = this.holder(uid);
    if (held && held.dataDir === this.dataDir && held.owner === owner) fs.rmSync(this.claimFile(uid), { force: true });
  }

  /** Drop this data dir's claims whose owner is not kept, and any claim whose data dir is gone. */
  sweep(keep: Set<string>): void {
    for (const name of fs.readdirSync(this.claimsDir)) {
      const held = this.holder(Number(name));
      if (!held) continue;
      const ours = held.dataDir === this.dataDir && !keep.has(held.owner);
      if (ours || !fs.existsSync(held.dataDir)) fs.rmSync(path.join(this.claimsDir, name), { force: true });
    }
  }

  private tryClaim(uid: number, owner: string): boolean {
    try {
      fs.writeFileSync(this.claimFile(uid), JSON.stringify({ dataDir: this.dataDir, owner } satisfies Claim), {
        flag: 'wx',
        mode: 0o600,
      });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  private holder(uid: number): Claim | null {
    try {
      return JSON.parse(fs.readFileSync(this.claimFile(uid), 'utf8')) as Claim;
    } catch {
      return null;
    }
  }

  private claimFile(uid: number): string {
    return path.join(this.claimsDir, String(uid));
  }
}
