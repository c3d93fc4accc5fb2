// Every MicroVM made or moved to a new state, told to whoever listens (the event stream, GET /v1/events), whichever
// server of the cluster made the change: on Postgres each change is also sent with NOTIFY (its id, and which
// process made it), and every process that has listeners LISTENs and reads the record again. On SQLite, one server
// has the database: its own writes are all there are. When a listening connection was down, what changed meanwhile
// is read from the MicroVMs' history once it hears again (REPLAY_MARGIN_MS earlier, for the servers' clocks) and
// told: a record may be told twice, never missed.
import { randomUUID } from 'node:crypto';
import type { ChangeChannel } from './driver.js';
import type { MicroVMRecord } from './types.js';

const CHANNEL = 'capsule_microvm_changes';
/** Changes written this long before a listener lost its connection are told again: servers' clocks differ a bit. */
const REPLAY_MARGIN_MS = 5000;

export class MicroVMChanges {
  private readonly listeners = new Set<(record: MicroVMRecord) => void>();
  /** This process, so that its own changes, told at once, are not told twice. */
  private readonly origin = randomUUID();
  private stopListening: (() => Promise<void>) | null = null;

  constructor(
    private readonly channel: ChangeChannel | null,
    private readonly read: (id: string) => Promise<MicroVMRecord | null>,
    /** MicroVMs with a change (made, or a new state) at or after an ISO time, oldest change first. */
    private readonly changedSince: (sinceIso: string) => Promise<MicroVMRecord[]>,
  ) {}

  subscribe(listener: (record: MicroVMRecord) => void): () => void {
    this.listeners.add(listener);
    this.stopListening ??=
      this.channel?.listen(
        CHANNEL,
        (payload) => void this.heard(payload),
        (lostAtMs) => void this.replay(lostAtMs),
      ) ?? null;
    return () => this.listeners.delete(listener);
  }

  /** A change this process made: told here now, and to the other servers. */
  changed(record: MicroVMRecord | null): void {
    if (!record) return;
    this.tell(record);
    void this.channel?.notify(CHANNEL, JSON.stringify({ id: record.id, origin: this.origin })).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.stopListening?.();
  }

  private async heard(payload: string): Promise<void> {
    let change: { id?: unknown; origin?: unknown };
    try {
      change = JSON.parse(payload) as typeof change;
    } catch {
      return;
    }
    if (change.origin === this.origin || typeof change.id !== 'string' || this.listeners.size === 0) return;
    const record = await this.read(change.id).catch(() => null);
    if (record) this.tell(record);
  }

  /** What changed while this process could not hear: told now (a failed read: the next loss and resume tries). */
  private async replay(lostAtMs: number): Promise<void> {
    if (this.listeners.size === 0) return;
    const since = new Date(lostAtMs - REPLAY_MARGIN_MS).toISOString();
    for (const record of await this.changedSince(since).catch(() => [])) this.tell(record);
  }

  private tell(record: MicroVMRecord): void {
    // a listener's failure is its own: it must never fail the write that was already made
    for (const listener of [...this.listeners])
      try {
        listener(record);
      } catch {
        // the event stream drops a subscriber it cannot write to
      }
  }
}
