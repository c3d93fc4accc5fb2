// Garbage in the blob store every host shares (CAPSULE_BLOBS=s3://…): snapshot bases no suspended VM needs and no
// publish used for GRACE_MS, and suspended states no record names (a terminate whose removal failed, a publish cut
// short, a VM ended while its host was down). Every host runs a round every ROUND_MS (removals are idempotent, a
// base's row goes by compare-and-set) and drops its own cached copies of bases that went.
//
// What keeps a base: a SUSPENDED VM whose published manifest names it, or a publish that used it within GRACE_MS (its
// row's `used_at`: store/shared-bases.ts; a publish takes seconds). While a resume holds a VM (its key set aside as
// it fetches), bases wait for the next round: which one it fetches is not known then.
// What keeps a suspended state: its record naming it, a resume holding its VM, or an object of it written within
// GRACE_MS (a publish records its key last).
import path from 'node:path';
import { BlobNotFoundError, type BlobListing, type BlobStore } from '../blobs/blob-store.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import { basePrefix, manifestOf } from './suspended-transfer.js';

const GRACE_MS = 60 * 60_000;
const ROUND_MS = 60 * 60_000;

export interface SharedGarbageDeps {
  blobs: BlobStore;
  store: Pick<Store, 'listMicroVMsInStates' | 'getMicroVM' | 'listSharedBases' | 'dropSharedBase'>;
  log: Logger;
}

export interface CollectedGarbage {
  /** Prefixes removed: `bases/…` and `suspended/<id>/<time>`. */
  removed: string[];
  freedBytes: number;
  /** Cached copies of gone bases dropped from this host's disk. */
  forgotten: number;
  /** Why bases were left for the next round, if they were. */
  basesSkipped: string | null;
}

/** Objects grouped by the prefix `groupOf` gives each key. */
function grouped(objects: BlobListing[], groupOf: (key: string) => string): Map<string, BlobListing[]> {
  const groups = new Map<string, BlobListing[]>();
  for (const object of objects) {
    const group = groupOf(object.key);
    const members = groups.get(group);
    if (members) members.push(object);
    else groups.set(group, [object]);
  }
  return groups;
}

const newestMs = (objects: BlobListing[]): number => Math.max(...objects.map((o) => o.modifiedAtMs));

export class SharedGarbage {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: SharedGarbageDeps,
    private readonly graceMs = GRACE_MS,
  ) {}

  /** A round every `intervalMs` from now on; a failed round is logged and the next one tries again. */
  start(intervalMs = ROUND_MS): void {
    const round = async () => {
      const done = await this.collect();
      if (done.removed.length > 0 || done.forgotten > 0)
        this.deps.log.info('removed shared blobs nothing needs', { ...done, removed: done.removed.length });
    };
    this.timer = setInterval(
      () =>
        void round().catch((err: Error) =>
          this.deps.log.warn('could not collect shared blobs', { error: err.message }),
        ),
      intervalMs,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async collect(nowMs = Date.now()): Promise<CollectedGarbage> {
    const cutoffMs = nowMs - this.graceMs;
    const suspended = await this.deps.store.listMicroVMsInStates(['SUSPENDED']);
    const held = new Set(suspended.filter((r) => r.suspendedBlob === '').map((r) => r.id));
    const named = new Set(suspended.map((r) => r.suspendedBlob).filter((key): key is string => !!key));
    const done: CollectedGarbage = { removed: [], freedBytes: 0, forgotten: 0, basesSkipped: null };

    const states = grouped(await this.deps.blobs.list('suspended'), (key) => key.split('/').slice(0, 3).join('/'));
    for (const [prefix, objects] of states) {
      const id = prefix.split('/')[1];
      if (named.has(prefix) || held.has(id) || newestMs(objects) >= cutoffMs) continue;
      const now = await this.deps.store.getMicroVM(id); // named or held since the list: kept
      if (now?.state === 'SUSPENDED' && (now.suspendedBlob === prefix || now.suspendedBlob === '')) continue;
      await this.remove(prefix, objects, done);
    }

    if (held.size > 0) {
      done.basesSkipped = `a resume holds ${held.size} MicroVM(s)`;
      return done;
    }
    const referenced = await this.basesNamedBy(named);
    const live = new Set<string>();
    for (const row of await this.deps.store.listSharedBases()) {
      const prefix = basePrefix(row.sha, row.generation);
      const keep =
        referenced.has(prefix) ||
        Date.parse(row.usedAt) >= cutoffMs ||
        !(await this.deps.store.dropSharedBase(row.sha, row.generation, new Date(cutoffMs).toISOString()));
      if (keep) live.add(prefix);
    }
    const bases = grouped(await this.deps.blobs.list('bases'), (key) => path.posix.dirname(key));
    for (const [prefix, objects] of bases) {
      if (live.has(prefix) || referenced.has(prefix) || newestMs(objects) >= cutoffMs) continue;
      await this.remove(prefix, objects, done);
    }
    for (const key of this.deps.blobs.localCopies('bases')) {
      const prefix = path.posix.dirname(key);
      if (live.has(prefix) || referenced.has(prefix)) continue;
      this.deps.blobs.forgetLocal(key);
      done.forgotten++;
    }
    return done;
  }

  /** The bases the published states `keys` are deltas over (a state with no manifest: none). */
  private async basesNamedBy(keys: Iterable<string>): Promise<Set<string>> {
    const bases = new Set<string>();
    for (const key of keys) {
      try {
        const { base } = await manifestOf(this.deps.blobs, key);
        if (base) bases.add(base);
      } catch (err) {
        if (!(err instanceof BlobNotFoundError)) throw err; // unknown: no base may go this round
      }
    }
    return bases;
  }

  private async remove(prefix: string, objects: BlobListing[], done: CollectedGarbage): Promise<void> {
    for (const object of objects) await this.deps.blobs.delete(object.key);
    done.removed.push(prefix);
    done.freedBytes += objects.reduce((sum, o) => sum + o.sizeBytes, 0);
  }
}
