// Each VM's egress log: the newest MAX_ENTRIES DNS queries and flow verdicts, as JSON lines in
// <dataDir>/egress-log/<id>.jsonl. A file, so it outlives suspend/resume and server restarts; removed
// with the VM. Appends are cheap; the file is rewritten to the newest entries when it doubles.
import fs from 'node:fs';
import path from 'node:path';
import type { EgressLogEntry } from '@capsule/protocol';

export const MAX_ENTRIES = 10_000;

export class EgressLogs {
  /** Lines in each VM's file, once counted. */
  private readonly lines = new Map<string, number>();

  constructor(
    private readonly dir: string,
    private readonly onEntry: (entry: EgressLogEntry) => void = () => undefined,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private fileOf(id: string): string {
    return path.join(this.dir, `${id}.jsonl`);
  }

  /** Never throws: a log that cannot be written (disk full) must not take the server down. */
  append(id: string, entry: EgressLogEntry): void {
    try {
      this.write(id, entry);
    } catch {
      // dropped; the verdict itself was enforced in the kernel regardless
    }
  }

  private write(id: string, entry: EgressLogEntry): void {
    this.onEntry(entry);
    const file = this.fileOf(id);
    fs.appendFileSync(file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    const count = (this.lines.get(id) ?? this.countLines(file)) + 1;
    this.lines.set(id, count);
    if (count >= 2 * MAX_ENTRIES) {
      const keep = this.read(id, MAX_ENTRIES);
      fs.writeFileSync(`${file}.tmp`, keep.map((e) => JSON.stringify(e)).join('\n') + '\n', { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
      this.lines.set(id, keep.length);
    }
  }

  private countLines(file: string): number {
    try {
      return fs.readFileSync(file, 'utf8').split('\n').length - 1;
    } catch {
      return 0;
    }
  }

  /** The newest `limit` entries, oldest first. */
  read(id: string, limit = MAX_ENTRIES): EgressLogEntry[] {
    let text: string;
    try {
      text = fs.readFileSync(this.fileOf(id), 'utf8');
    } catch {
      return [];
    }
    const lines = text.split('\n').filter((l) => l.length > 0);
    const out: EgressLogEntry[] = [];
    for (const line of lines.slice(-Math.min(limit, MAX_ENTRIES))) {
      try {
        out.push(JSON.parse(line) as EgressLogEntry);
      } catch {
        // a line torn by a crash mid-append
      }
    }
    return out;
  }

  remove(id: string): void {
    this.lines.delete(id);
    fs.rmSync(this.fileOf(id), { force: true });
  }
}
