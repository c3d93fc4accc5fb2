// MicroVM Images: accept a zip (uploaded, or from s3://), check it and its Dockerfile/capsule.json
// before anything is created (bad input is a 400 naming the problem, and leaves nothing), then build
// each version in a builder VM, one build at a time. Versions are immutable: PENDING → IN_PROGRESS →
// SUCCESSFUL (with a frozen layer) or FAILED (with the step and its output). A version in use by a
// MicroVM cannot be deleted.
import { Mutex } from 'async-mutex';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { CapsuleError, ErrorCode, type ImageVersion, type VmShape } from '@capsule/protocol';
import type { ImageVersionRecord } from '../store/types.js';
import { BuildSpecError, type BuildPlan } from './build-plan.js';
import { parseCapsuleJson } from './capsule-json.js';
import { parseDockerfile } from './dockerfile.js';
import { AppZip, ZipError } from './zip.js';
import type { DiskReserve } from '../disk-reserve.js';
import type { SnapshotFiles } from '../vmm/machine.js';
import {
  artifactKey,
  buildVersion,
  gzippedIn,
  LAYER,
  PREFETCH,
  SNAPSHOT_FILES,
  SNAPSHOT_OBJECTS,
  type VersionBuildDeps,
} from './version-build.js';
import type { PageRanges } from '../vmm/page-prefetch.js';
import { buffer } from 'node:stream/consumers';

/** What a build needs of the storage quota: a refusal when the tenant is over it, and forgetting a stale figure. */
interface TenantStorage {
  check(tenantId: string, action: string): Promise<void>;
  forget(tenantId: string): void;
}

export interface ImageServiceDeps extends VersionBuildDeps {
  /** The free-space reserve an upload is checked against. */
  disk: DiskReserve;
  /**
   * Tenants' storage quotas (lifecycle/storage-quota.ts): a new version is refused while its tenant is at or over its
   * own.
   */
  storage: TenantStorage;
  /** Is any MicroVM (not terminated) using this image version? */
  inUse(tenantId: string, name: string, version: number): Promise<boolean>;
}

/** The version a launch that names none gets: the newest successfully built one that is ACTIVE. */
export function defaultVersionOf(versions: ImageVersionRecord[]): ImageVersionRecord | undefined {
  return versions
    .filter((v) => v.state === 'SUCCESSFUL' && v.status === 'ACTIVE')
    .sort((a, b) => a.version - b.version)
    .at(-1);
}

/** How a version is described besides its zip. */
export interface CreateOptions {
  /** A capsule.json sent beside the zip (instead of the zip's own Dockerfile or capsule.json). */
  config?: string;
  /** The runtime to build on whatever the description names (the AWS API's baseImageArn). */
  baseRuntime?: string;
  /** Settings given beside the zip that override its description (AWS: env, memory, hooks). */
  adjustPlan?: (plan: BuildPlan) => BuildPlan;
  /** The AWS API's image configuration, kept with the version and echoed back. */
  awsConfig?: Record<string, unknown>;
}

/** A built version a MicroVM can launch from: its layer, and its app-ready snapshot (for one shape). */
export interface LaunchableImage {
  record: ImageVersionRecord;
  layerPath: string;
  snapshot: (SnapshotFiles & VmShape & { kind: 'snapshot'; prefetch?: PageRanges }) | null;
}

export function toApiVersion(v: ImageVersionRecord): ImageVersion {
  return {
    name: v.name,
    version: v.version,
    state: v.state,
    runtime: v.runtime,
    source: v.source,
    start: v.plan.start,
    port: v.plan.port,
    failureReason: v.failureReason,
    failedStep: v.failedStep,
    createdAt: v.createdAt,
    finishedAt: v.finishedAt,
  };
}

export class ImageService {
  /** Builds run one at a time, in the order they were accepted. */
  private readonly builds = new Mutex();
  private readonly root: string;
  /** Per version's prefetch key: its recorded page ranges, or null for none. */
  private readonly prefetches = new Map<string, PageRanges | null>();

  constructor(private readonly deps: ImageServiceDeps) {
    this.root = path.join(deps.config.dataDir, 'images');
  }

  /** Where a version's build log is written (local: it is read while it grows). */
  private dirOf(tenantId: string, name: string, version: number): string {
    return path.join(this.root, tenantId, name, String(version));
  }

  private key(v: Pick<ImageVersionRecord, 'tenantId' | 'name' | 'version'>, file: string): string {
    return artifactKey(v, file);
  }

  /** Read the app description from the zip: a build plan, or a 400 that names the problem. */
  private async planOf(zip: AppZip, options: CreateOptions): Promise<BuildPlan> {
    const runtimes = this.deps.runtimes.list().map((r) => r.name);
    const { config, baseRuntime } = options;
    if (baseRuntime !== undefined && !runtimes.includes(baseRuntime))
      throw new CapsuleError(
        ErrorCode.VALIDATION_FAILED,
        `unknown base runtime "${baseRuntime}" (available: ${runtimes.join(', ')})`,
      );
    const adjust = options.adjustPlan ?? ((plan: BuildPlan) => plan);
    try {
      if (config !== undefined) return adjust(parseCapsuleJson(config, runtimes, baseRuntime));
      if (zip.has('Dockerfile'))
        return adjust(parseDockerfile((await zip.read('Dockerfile')).toString('utf8'), runtimes, baseRuntime));
      if (zip.has('capsule.json'))
        return adjust(parseCapsuleJson((await zip.read('capsule.json')).toString('utf8'), runtimes, baseRuntime));
    } catch (err) {
      if (err instanceof BuildSpecError || err instanceof ZipError)
        throw new CapsuleError(ErrorCode.VALIDATION_FAILED, err.message);
      throw err;
    }
    throw new CapsuleError(
      ErrorCode.VALIDATION_FAILED,
      'the zip has neither a Dockerfile nor a capsule.json at its top level',
    );
  }

  /**
   * A new version of `name` from the zip in `body` (described by its Dockerfile or capsule.json, or by
   * `options.config`, a capsule.json sent beside it): checked now, built in the background. The zip is kept
   * with the version (its build input); nothing is kept if it is refused.
   */
  async create(
    tenantId: string,
    name: string,
    body: Readable,
    source: string,
    options: CreateOptions = {},
  ): Promise<ImageVersionRecord> {
    const upload = await this.uploadPath(tenantId);
    try {
      await pipeline(body, fs.createWriteStream(upload, { mode: 0o600 }));
    } catch (err) {
      fs.rmSync(upload, { force: true });
      throw err;
    }
    return this.createFromUpload(tenantId, name, upload, source, options);
  }

  /** A fresh path for the tenant's upload on the data dir's filesystem (so keeping it is a rename, not a copy). */
  async uploadPath(tenantId: string): Promise<string> {
    this.deps.disk.check('accept an image (a build writes a layer and a snapshot)');
    await this.deps.storage.check(tenantId, 'accept an image');
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    return path.join(this.root, `.upload-${randomBytes(8).toString('hex')}.zip`);
  }

  /** create() for a zip already written to `upload` (from uploadPath()); the file is taken over, or removed. */
  async createFromUpload(
    tenantId: string,
    name: string,
    upload: string,
    source: string,
    options: CreateOptions = {},
  ): Promise<ImageVersionRecord> {
    let zip: AppZip | null = null;
    try {
      try {
        zip = await AppZip.open(upload);
      } catch (err) {
        if (err instanceof ZipError) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, err.message);
        throw err;
      }
      const plan = await this.planOf(zip, options);
      await this.makeRoomForVersion(tenantId, name);
      const now = new Date().toISOString();
      const record = await this.deps.store.insertImageVersion({
        tenantId,
        name,
        state: 'PENDING',
        runtime: plan.runtime,
        source,
        plan,
        failureReason: null,
        failedStep: null,
        createdAt: now,
        updatedAt: now,
        finishedAt: null,
        status: 'ACTIVE',
        awsConfig: options.awsConfig ?? null,
        buildHostId: this.deps.config.hostId,
      });
      fs.mkdirSync(this.dirOf(tenantId, name, record.version), { recursive: true, mode: 0o700 });
      zip.close();
      zip = null;
      await this.deps.blobs.putFile(this.key(record, 'app.zip'), upload);
      this.deps.log.info('image build queued', { tenantId, name, version: record.version, runtime: plan.runtime });
      // a background path: a store that fails even the FAILED update must not become an unhandled rejection
      const run = (): Promise<void> =>
        buildVersion(this.deps, record, this.dirOf(tenantId, name, record.version)).catch((err: Error) =>
          this.deps.log.error('image build could not be recorded', {
            tenantId,
            name,
            version: record.version,
            error: err.message,
          }),
        );
      void this.builds.runExclusive(run);
      return record;
    } finally {
      zip?.close();
      fs.rmSync(upload, { force: true });
    }
  }

  /** Wait for queued builds (tests, shutdown). */
  idle(): Promise<void> {
    return this.builds.waitForUnlock();
  }

  /** Builds a restart cut short are failed (their builder VM died with the old server). */
  async recover(): Promise<void> {
    // only this host's: other hosts of the cluster build on
    for (const v of await this.deps.store.listImageVersionsInStates(
      ['PENDING', 'IN_PROGRESS'],
      this.deps.config.hostId,
    )) {
      await this.deps.store.updateImageVersion(v.tenantId, v.name, v.version, {
        state: 'FAILED',
        failureReason: 'the server restarted during the build; create the image again',
        finishedAt: new Date().toISOString(),
      });
    }
    fs.rmSync(path.join(this.deps.config.dataDir, 'b'), { recursive: true, force: true });
  }

  async versions(tenantId: string, name?: string): Promise<ImageVersionRecord[]> {
    const versions = await this.deps.store.listImageVersions(tenantId, name);
    if (name !== undefined && versions.length === 0)
      throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `image ${name} not found`);
    return versions;
  }

  /** A tenant's images: each name with its versions, in version order. */
  async byName(tenantId: string): Promise<Map<string, ImageVersionRecord[]>> {
    const images = new Map<string, ImageVersionRecord[]>();
    for (const v of await this.versions(tenantId)) images.set(v.name, [...(images.get(v.name) ?? []), v]);
    return images;
  }

  async version(tenantId: string, name: string, version: number): Promise<ImageVersionRecord> {
    const found = await this.deps.store.getImageVersion(tenantId, name, version);
    if (!found) throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `image ${name} version ${version} not found`);
    return found;
  }

  /** The build log from byte `offsetBytes` on (a follower passes what it has, and gets only what is new). */
  async buildLog(tenantId: string, name: string, version: number, offsetBytes = 0): Promise<Buffer> {
    await this.version(tenantId, name, version);
    const file = path.join(this.dirOf(tenantId, name, version), 'build.log');
    if (!fs.existsSync(file)) return Buffer.alloc(0);
    const fd = fs.openSync(file, 'r');
    try {
      const rest = Math.max(0, fs.fstatSync(fd).size - offsetBytes);
      const buffer = Buffer.alloc(rest);
      return buffer.subarray(0, fs.readSync(fd, buffer, 0, rest, offsetBytes));
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The stored size of each artifact of a version (null where there is none: not built, or failed). */
  async artifactSizes(record: ImageVersionRecord): Promise<Record<'zip' | 'layer' | 'memory' | 'disk', number | null>> {
    const size = async (file: string) => (await this.deps.blobs.head(this.key(record, file)))?.sizeBytes ?? null;
    const [zip, layer, memory, memoryGzipped, disk] = await Promise.all(
      ['app.zip', LAYER, ...SNAPSHOT_OBJECTS.filter((f) => f.includes('memory')), 'snapshot/disk.qcow2'].map(size),
    );
    // S3 keeps the memory gzipped
    return { zip, layer, memory: memory ?? memoryGzipped, disk };
  }

  /** The version to launch: the one asked for, or the newest SUCCESSFUL one. */
  async launchable(tenantId: string, name: string, version?: number): Promise<LaunchableImage> {
    const all =
      version === undefined
        ? await this.deps.store.listImageVersions(tenantId, name)
        : [await this.version(tenantId, name, version)];
    const runtimes = this.deps.runtimes
      .list()
      .map((r) => r.name)
      .join(', ');
    if (all.length === 0)
      throw new CapsuleError(
        ErrorCode.IMAGE_NOT_FOUND,
        `no image or runtime named ${name} (built-in runtimes: ${runtimes})`,
      );
    const record = version === undefined ? defaultVersionOf(all) : all[0];
    if (!record)
      throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `image ${name} has no successfully built, active version`);
    if (record.state !== 'SUCCESSFUL')
      throw new CapsuleError(ErrorCode.INVALID_STATE, `image ${name} version ${record.version} is ${record.state}`);
    if (record.status === 'INACTIVE')
      throw new CapsuleError(ErrorCode.INVALID_STATE, `image ${name} version ${record.version} is INACTIVE`);
    return {
      record,
      layerPath: await this.deps.blobs.localFile(this.key(record, LAYER)),
      snapshot: await this.snapshotOf(record),
    };
  }

  /** The pages its validate step touched (null: none recorded), read once per version. */
  private async prefetchOf(record: ImageVersionRecord): Promise<PageRanges | null> {
    const key = this.key(record, PREFETCH);
    if (!this.prefetches.has(key)) {
      const ranges = await this.deps.blobs
        .get(key)
        .then(async (body) => JSON.parse((await buffer(body)).toString('utf8')) as PageRanges)
        .catch(() => null);
      this.prefetches.set(key, ranges);
    }
    return this.prefetches.get(key) ?? null;
  }

  /** The version's app-ready snapshot as local files, or null (none, or not all of it there). */
  private async snapshotOf(record: ImageVersionRecord): Promise<LaunchableImage['snapshot']> {
    try {
      const [memoryPath, statePath, diskPath, manifestPath] = await Promise.all(
        SNAPSHOT_FILES.map((file) => this.deps.blobs.localFile(this.key(record, file), { gzipped: gzippedIn(file) })),
      );
      const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as VmShape;
      const prefetch = this.deps.config.pagePrefetch ? await this.prefetchOf(record) : null;
      return {
        kind: 'snapshot',
        memoryPath,
        statePath,
        diskPath,
        vcpuCount: manifest.vcpuCount,
        memoryMib: manifest.memoryMib,
        ...(prefetch ? { prefetch } : {}),
      };
    } catch {
      return null;
    }
  }

  /**
   * Versions per image are capped (CAPSULE_MAX_IMAGE_VERSIONS): at the cap, the oldest versions no
   * MicroVM uses (and not building) are deleted to make room; if every one is in use, QUOTA_EXCEEDED.
   */
  private async makeRoomForVersion(tenantId: string, name: string): Promise<void> {
    const max = this.deps.config.maxVersionsPerImage;
    const versions = (await this.deps.store.listImageVersions(tenantId, name)).sort((a, b) => a.version - b.version);
    let excess = versions.length - max + 1;
    for (const v of versions) {
      if (excess <= 0) return;
      if (v.state === 'PENDING' || v.state === 'IN_PROGRESS' || (await this.deps.inUse(tenantId, name, v.version)))
        continue;
      this.deps.log.info('pruning the oldest unused image version', { tenantId, name, version: v.version, max });
      await this.remove(tenantId, name, v.version);
      excess -= 1;
    }
    if (excess > 0) {
      throw new CapsuleError(
        ErrorCode.QUOTA_EXCEEDED,
        `image ${name} has ${versions.length} versions (the most kept is ${max}) and each is building or used ` +
          `by MicroVMs; delete one first`,
        {
          details: { quota: 'maxVersionsPerImage', limit: max, used: versions.length, requested: 1 },
        },
      );
    }
  }

  async remove(tenantId: string, name: string, version?: number): Promise<void> {
    const versions =
      version === undefined ? await this.versions(tenantId, name) : [await this.version(tenantId, name, version)];
    for (const v of versions) {
      if (v.state === 'PENDING' || v.state === 'IN_PROGRESS')
        throw new CapsuleError(ErrorCode.INVALID_STATE, `image ${name} version ${v.version} is still building`);
      if (await this.deps.inUse(tenantId, name, v.version))
        throw new CapsuleError(
          ErrorCode.INVALID_STATE,
          `image ${name} version ${v.version} is used by MicroVMs; terminate them first`,
        );
    }
    for (const v of versions) {
      await this.deps.store.deleteImageVersion(tenantId, name, v.version);
      for (const file of ['app.zip', LAYER, ...SNAPSHOT_OBJECTS, PREFETCH])
        await this.deps.blobs.delete(this.key(v, file));
      this.prefetches.delete(this.key(v, PREFETCH));
      fs.rmSync(this.dirOf(tenantId, name, v.version), { recursive: true, force: true });
    }
    this.deps.storage.forget(tenantId);
  }
}
