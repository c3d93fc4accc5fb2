// A suspended VM's state in the blob store every host shares (CAPSULE_BLOBS=s3://…), so any host can resume it.
//
// A suspend is durable on its host first (suspend-resume.ts: ~0.1 s, the VM is SUSPENDED then), and published
// after: its own files go to `suspended/<id>/<suspend time>/` (disk overlay, then the state, then a manifest
// last), and the record names that prefix (`suspendedBlob`) only if it is still that suspend. Until then the VM
// is resumable only on its host; a host that crashes in between publishes it when it starts again (recovery),
// and while it is down its VM waits for it (a resume elsewhere answers that its state is on that host).
//
// What the state is a delta over (the ready snapshot it launched from: memory, disk layer, device state) goes
// once per snapshot to `bases/<sha-256 of the snapshot's device state>/<generation>/`, shared by every VM launched
// from it, its memory gzipped (mostly zeros); another host downloads it once into its blob cache, the memory with
// its zero blocks as holes. A base nothing uses goes (shared-garbage.ts); a publish after that uploads it again
// under a new generation. The layer under that base (the image's layer, or the
// runtime's image) is this host's own copy: the downloaded files are re-pointed at it (`qemu-img rebase -u`,
// a header write; never the VM's data).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { buffer } from 'node:stream/consumers';
import { type BlobStore, gzipStream, writeFileAtomically } from '../blobs/blob-store.js';
import type { Logger } from '../log.js';
import { sha256Of } from '../snapshots/capture.js';
import type { MicroVMRecord, Store } from '../store/types.js';
import { backingOf } from '../vmm/backing-chain.js';
import { baseDiskBeside, baseStateBeside, linkBase } from '../vmm/base-layers.js';
import { BACKING_RECORD } from '../vmm/launch-disk.js';
import { LEGACY_MARK } from '../vmm/machine.js';

const execFileAsync = promisify(execFile);
const MANIFEST = 'manifest.json';
const BASE_FILES = ['memory', 'disk.qcow2', 'state'] as const;
/** Base files uploaded gzipped (`<name>.gz`): a memory image is mostly zeros (512 MiB went up as 52 MB). */
const GZIPPED: ReadonlySet<string> = new Set(['memory']);
/** Written last under a base's prefix: the base is whole. */
const BASE_READY = 'ready';

/** A base's `ready` marker: the base is whole, and these of its files are `<name>.gz`. */
interface BaseReady {
  gzipped?: string[];
}

interface SuspendedManifest {
  format: 1;
  /** The base's prefix (`bases/<sha>/<generation>`, or `bases/<sha>` before generations); null: the VM booted. */
  base: string | null;
}

async function readJson<T>(blobs: BlobStore, key: string): Promise<T> {
  return JSON.parse((await buffer(await blobs.get(key))).toString()) as T;
}

/** The manifest of the state published under `key`: what base, if any, it is a delta over. */
export const manifestOf = (blobs: BlobStore, key: string): Promise<SuspendedManifest> =>
  readJson<SuspendedManifest>(blobs, `${key}/${MANIFEST}`);

/** Where a generation of a snapshot's base lives (store/shared-bases.ts). */
export const basePrefix = (sha: string, generation: string): string => `bases/${sha}/${generation}`;

/** The layer under a VM's disk chain on this host: an image's layer (qcow2) or a runtime's image (raw). */
export interface LowerLayer {
  path: string;
  format: 'qcow2' | 'raw';
}

export interface SuspendedStatesDeps {
  blobs: BlobStore;
  store: Pick<Store, 'publishSuspendedBlob' | 'getMicroVM' | 'useSharedBase'>;
  qemuImgBinary: string;
  log: Logger;
}

export class SuspendedStates {
  /** Publishes under way, by VM id. */
  private readonly publishing = new Map<string, Promise<boolean>>();
  /** Bases being uploaded, by prefix. */
  private readonly bases = new Map<string, Promise<void>>();

  constructor(private readonly deps: SuspendedStatesDeps) {}

  /** `publish` in the background: a failure is logged (the VM stays resumable on its host; recovery tries again). */
  publishLater(record: MicroVMRecord, dir: string): void {
    const started = Date.now();
    const log = this.deps.log.child({ microvmId: record.id, tenantId: record.tenantId });
    const work: Promise<boolean> = this.publish(record, dir)
      .then(
        (published) => {
          if (published) log.info('suspended state published', { ms: Date.now() - started });
          return published;
        },
        (err: Error) => {
          log.warn('could not publish the suspended state; it stays on this host', { error: err.message });
          return false;
        },
      )
      .finally(() => {
        if (this.publishing.get(record.id) === work) this.publishing.delete(record.id);
      });
    this.publishing.set(record.id, work);
  }

  /** Whether its state is published: already, by the publish under way, or by one started now. */
  async published(record: MicroVMRecord, dir: string): Promise<boolean> {
    const inFlight = this.publishing.get(record.id);
    if (inFlight) return inFlight;
    if ((await this.deps.store.getMicroVM(record.id))?.suspendedBlob) return true;
    this.publishLater(record, dir);
    return this.publishing.get(record.id)!;
  }

  /**
   * Upload a SUSPENDED VM's files from `dir` and record where they are; false when it is no longer that suspend
   * (resumed or terminated meanwhile: what was uploaded is removed) or its state cannot move (legacy networking).
   */
  async publish(record: MicroVMRecord, dir: string): Promise<boolean> {
    const { blobs, store } = this.deps;
    if (!record.suspendedAt || fs.existsSync(path.join(dir, LEGACY_MARK))) return false;
    const diskPath = path.join(dir, 'disk.qcow2');
    const base = baseStateBeside(diskPath);
    const baseDisk = baseDiskBeside(diskPath);
    const basePrefix = base && baseDisk ? await this.publishBase(base.memoryPath, baseDisk, base.statePath) : null;
    const key = `suspended/${record.id}/${Date.parse(record.suspendedAt)}`;
    try {
      await this.upload(`${key}/disk.qcow2`, diskPath);
      await this.upload(`${key}/state`, path.join(dir, 'state'));
      const manifest: SuspendedManifest = { format: 1, base: basePrefix };
      await blobs.put(`${key}/${MANIFEST}`, Buffer.from(JSON.stringify(manifest)));
      if (await store.publishSuspendedBlob(record.id, record.suspendedAt, key)) return true;
      if ((await store.getMicroVM(record.id))?.suspendedBlob === key) return true; // published by an earlier try
    } catch (err) {
      this.dropLater(key);
      // resumed (or being resumed) or ended meanwhile, its files going with it: nothing was lost
      const now = await store.getMicroVM(record.id);
      if (now?.state === 'SUSPENDED' && now.suspendedAt === record.suspendedAt && now.suspendedBlob !== '') throw err;
      return false;
    }
    await this.drop(key);
    return false;
  }

  /**
   * The snapshot a VM's state is a delta over, once per snapshot generation (and one upload at a time of each): its
   * prefix. Each use is recorded, so the collector (shared-garbage.ts) keeps it.
   */
  private async publishBase(memoryPath: string, diskPath: string, statePath: string): Promise<string> {
    const sha = sha256Of(statePath);
    const generation = randomBytes(6).toString('hex');
    const prefix = basePrefix(sha, await this.deps.store.useSharedBase(sha, generation, new Date().toISOString()));
    let uploading = this.bases.get(prefix);
    if (!uploading) {
      const files = { memory: memoryPath, 'disk.qcow2': diskPath, state: statePath };
      uploading = (async () => {
        if (!(await this.deps.blobs.head(`${prefix}/${BASE_READY}`))) {
          for (const name of BASE_FILES)
            if (GZIPPED.has(name)) await this.uploadGzipped(`${prefix}/${name}.gz`, files[name]);
            else await this.upload(`${prefix}/${name}`, files[name]);
          // it names what went gzipped: a base from before says nothing ({})
          const ready: BaseReady = { gzipped: [...GZIPPED] };
          await this.deps.blobs.put(`${prefix}/${BASE_READY}`, Buffer.from(JSON.stringify(ready)));
        }
        // a VM of this base moving back here finds it without a download
        for (const name of BASE_FILES) this.deps.blobs.seedLocalFile(`${prefix}/${name}`, files[name]);
      })().finally(() => this.bases.delete(prefix));
      this.bases.set(prefix, uploading);
    }
    await uploading;
    return prefix;
  }

  /**
   * Download a published state into `dir` (emptied first) as a suspend on this host would have left it, its disk
   * chain ending on `lower`: the state file last, so the directory is whole only once it is there.
   */
  async fetch(key: string, dir: string, lower: LowerLayer): Promise<void> {
    const { blobs } = this.deps;
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      const manifest = await manifestOf(blobs, key);
      const diskPath = path.join(dir, 'disk.qcow2');
      await writeFileAtomically(diskPath, await blobs.get(`${key}/disk.qcow2`), { durable: true });
      if (manifest.base) {
        const ready = await readJson<BaseReady>(blobs, `${manifest.base}/${BASE_READY}`);
        const [memoryPath, baseDisk, statePath] = await Promise.all(
          BASE_FILES.map((name) =>
            blobs.localFile(`${manifest.base}/${name}`, { gzipped: ready.gzipped?.includes(name) ?? false }),
          ),
        );
        await this.rebase(baseDisk, lower);
        if (!linkBase(dir, { memoryPath, diskPath: baseDisk, statePath }))
          throw new Error(`the blob cache and ${dir} are on different filesystems`);
      } else {
        await this.rebase(diskPath, lower);
        fs.writeFileSync(path.join(dir, BACKING_RECORD), lower.path, { mode: 0o600 });
      }
      await writeFileAtomically(path.join(dir, 'state'), await blobs.get(`${key}/state`), { durable: true });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new CapsuleError(
        ErrorCode.RESUME_FAILED,
        `could not fetch the suspended state from ${blobs.location}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** Point a qcow2 (a downloaded copy, this host's own) at this host's lower layer, unless it already is. */
  private async rebase(file: string, lower: LowerLayer): Promise<void> {
    if (backingOf(file) === path.resolve(lower.path)) return;
    await execFileAsync(this.deps.qemuImgBinary, [
      'rebase',
      '-u',
      '-f',
      'qcow2',
      '-F',
      lower.format,
      '-b',
      lower.path,
      file,
    ]);
  }

  /** A gzipped copy of `file` as `key` (the file stays). */
  private uploadGzipped(key: string, file: string): Promise<unknown> {
    return this.deps.blobs.put(key, gzipStream(file));
  }

  /** A copy of `file` as `key` (the file stays). */
  private upload(key: string, file: string): Promise<unknown> {
    // error-listener: put reads the stream to its end (a pipeline, or for-await in S3's Upload): a read error rejects
    return this.deps.blobs.put(key, fs.createReadStream(file));
  }

  /** Remove a published state (its base stays: other VMs share it). */
  async drop(key: string): Promise<void> {
    for (const name of ['disk.qcow2', 'state', MANIFEST]) await this.deps.blobs.delete(`${key}/${name}`);
  }

  /** `drop`, in the background: a stale copy costs only storage, so a failure is logged. */
  dropLater(key: string | null): void {
    if (key)
      this.drop(key).catch((err: Error) =>
        this.deps.log.warn('could not remove a stale suspended state', { key, error: err.message }),
      );
  }
}
