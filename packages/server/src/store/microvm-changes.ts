// Every MicroVM made or moved to a new state, told to whoever listens (the event stream, GET /v1/events), whichever
// server of the cluster made the change: on Postgres each change is also sent with NOTIFY (its id, and which
// process made it), and every process that has listeners LISTENs and reads the record again. On SQLite, one server
// has the database: its own writes are all there are. A change made while a listener's connection is down is not
// heard (the event stream's clients list again when they reconnect).
import { randomUUID } from 'node:crypto';
import type { ChangeChannel } from './driver.js';
import type { MicroVMRecord } from './types.js';

const CHANNEL = 'capsule_microvm_changes';

export class MicroVMChanges {
  private readonly listeners = new Set<(record: MicroVMRecord) => void>();
  /** This process, so that its own changes, told at once, are not told twice. */
  private readonly origin = randomUUID();
  private stopListening: (() => Promise<void>) | null = null;

  constructor(
    private readonly channel: ChangeChannel | null,
    private readonly read: (id: string) => Promise<MicroVMRecord | null>,
  ) {}

  subscribe(listener: (record: MicroVMRecord) => void): () => void {
    this.listeners.add(listener);
    this.stopListening ??= this.channel?.listen(CHANNEL, (payload) => void this.heard(payload)) ?? null;
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
