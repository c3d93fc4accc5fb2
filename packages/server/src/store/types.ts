// Persistence contract. Async so SQLite (default) and Postgres share one interface.
import type {
  EgressMode,
  ImageBuildState,
  MicroVMState,
  ResolvedIdlePolicy,
  ResolvedNetworkPolicy,
  TenantQuotas,
  VmShape,
} from '@capsule/protocol';
import type { BuildPlan } from '../images/build-plan.js';
import type { HostRecord, HostUsage } from './hosts.js';
import type { SharedBaseRecord } from './shared-bases.js';

/** How a MicroVM's machine started: booted, restored from a ready snapshot, or claimed from the warm pool. */
export type LaunchedFrom = 'boot' | 'snapshot' | 'pool';

export interface MicroVMRecord extends VmShape {
  id: string;
  tenantId: string;
  state: MicroVMState;
  imageName: string;
  imageVersion: number | null;
  metadata: Record<string, string>;
  env: Record<string, string>;
  /** network.egress, kept in its own column (the first schema's). */
  egress: EgressMode;
  network: ResolvedNetworkPolicy;
  /** The host network slot (namespace, uplink addresses) of a running VM; null while it has none. */
  netSlot: number | null;
  maximumDurationSeconds: number;
  idlePolicy: ResolvedIdlePolicy;
  /** Last API/exec/file call for this VM (persisted by the policy sweeper, so idleness survives a restart). */
  lastActivityAt: string | null;
  suspendedAt: string | null;
  accelerator: 'kvm' | 'tcg' | null;
  launchedFrom: LaunchedFrom | null;
  kernelRelease: string | null;
  failureReason: string | null;
  qemuPid: number | null;
  vmDir: string | null;
  /** The uid (and gid) its QEMU runs as, for as long as its files exist; null when unjailed. */
  jailUid: number | null;
  /**
   * What the AWS API's RunMicrovm said that Capsule keeps only to echo (role, logging, network connectors); null or
   * null for a VM launched through Capsule's own API.
   */
  aws: Record<string, unknown> | null;
  /** The host that runs it, or ran it last (store/hosts.ts); null only for records older than hosts. */
  hostId: string | null;
  /**
   * A SUSPENDED VM's state and disk in the shared blob store (the key prefix, lifecycle/suspended-transfer.ts):
   * set once they are uploaded, so any host can resume it; null while they are only on its host; '' while a
   * resume on its host holds it there.
   */
  suspendedBlob: string | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  terminatedAt: string | null;
}

/** Fields of a MicroVM that change without a state change (the state changes only through Store.transition). */
export type MicroVMPatch = Partial<Omit<MicroVMRecord, 'id' | 'tenantId' | 'state' | 'createdAt'>>;

export interface ListFilter {
  tenantId: string;
  state?: MicroVMState;
  imageName?: string;
  /** A version of the image (a runtime's VMs count as version 1, as the AWS API shows them). */
  imageVersion?: number;
  metadata?: Record<string, string>;
  limit: number;
  /** Opaque cursor: the last id of the previous page. */
  after?: string;
}

export interface TenantRecord {
  id: string;
  name: string;
  /** As stored: a quota added after the tenant was made is missing (the server's default applies: effectiveQuotas). */
  quotas: Partial<TenantQuotas>;
  createdAt: string;
}

export interface ApiKeyRecord {
  id: string;
  keyHash: string;
  tenantId: string;
  isAdmin: boolean;
  name: string | null;
  createdAt: string;
  /** The key itself sealed under the cluster key: only the admin key of a cluster, so every server reads it. */
  sealedKey?: string | null;
}

/** An AWS-style access key pair of an API key (SigV4 for the AWS routes); the secret sealed by the server key. */
export interface AwsAccessKeyRecord {
  accessKeyId: string;
  /** The API key it belongs to: revoking that key revokes the pair. */
  keyId: string;
  tenantId: string;
  secretSealed: string;
  createdAt: string;
}

/** A client token (AWS's `clientToken`): a replay of its request gets the same resource, until it expires. */
export interface IdempotencyRecord {
  tenantId: string;
  operation: string;
  token: string;
  requestHash: string;
  /** null while the first request is still making it. */
  resourceId: string | null;
  expiresAt: string;
}

/** What a tenant's MicroVMs in the given states hold. */
/** A tenant's admission not yet counted in its VMs' states (store/quota-reservations.ts). */
export interface QuotaReservation {
  /** The VM it is for. */
  id: string;
  tenantId: string;
  hostId: string;
  vcpuCount: number;
  memoryMib: number;
  expiresAt: string;
}

export interface TenantUsage {
  microvms: number;
  vcpuCount: number;
  memoryMib: number;
}

export interface ImageVersionRecord {
  tenantId: string;
  name: string;
  version: number;
  state: ImageBuildState;
  runtime: string;
  source: string;
  plan: BuildPlan;
  failureReason: string | null;
  failedStep: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** INACTIVE: never the default version to launch, and refused when named (the AWS API's version status). */
  status: ImageVersionStatus;
  /** The AWS API's image configuration as given (validated there), echoed back; null for Capsule's own images. */
  awsConfig: Record<string, unknown> | null;
  /** The host that builds it (its build log is there while it runs); null: recorded before hosts were. */
  buildHostId: string | null;
}

type ImageVersionStatus = 'ACTIVE' | 'INACTIVE';
export type ImageVersionPatch = Partial<
  Pick<ImageVersionRecord, 'state' | 'failureReason' | 'failedStep' | 'finishedAt' | 'status'>
>;

export interface MicroVMHistoryEntry {
  state: MicroVMState;
  at: string;
  durationMs: number | null;
}

export interface Store {
  insertMicroVM(record: MicroVMRecord): Promise<void>;
  /** Every MicroVM this process inserts or moves to a new state, as it is after the write; returns unsubscribe. */
  onMicroVMChange(listener: (record: MicroVMRecord) => void): () => void;
  /**
   * The one way a state changes: `from` → `to` must be in the state table (store/states.ts; a bug
   * otherwise, thrown), and applies (with `patch`) only if the VM is in one of `from` now: a
   * compare-and-set. Null if it was not (or is gone).
   */
  transition(
    id: string,
    from: MicroVMState | readonly MicroVMState[],
    to: MicroVMState,
    patch?: MicroVMPatch,
    /** How long the operation that ends in `to` took (a launch, suspend or resume), kept in the history. */
    timing?: { durationMs: number },
  ): Promise<MicroVMRecord | null>;
  /** The states a MicroVM went through, oldest first (made with PENDING; one entry per transition). */
  history(id: string): Promise<MicroVMHistoryEntry[]>;
  /** Fields other than the state; null if the VM is gone. */
  updateMicroVM(id: string, patch: MicroVMPatch): Promise<MicroVMRecord | null>;
  getMicroVM(id: string): Promise<MicroVMRecord | null>;
  listMicroVMs(filter: ListFilter): Promise<MicroVMRecord[]>;
  /** Every tenant's MicroVMs in these states; with `hostId`, only that host's. */
  listMicroVMsInStates(states: MicroVMState[], hostId?: string): Promise<MicroVMRecord[]>;
  /** One tenant's MicroVMs in these states, on any host. */
  listTenantMicroVMsInStates(tenantId: string, states: MicroVMState[]): Promise<MicroVMRecord[]>;
  /**
   * `hostId`'s MicroVMs that run nothing (SUSPENDED, FAILED, TERMINATED) yet still name a QEMU or a namespace there:
   * left by a server that died, or ended by another server while that host was down.
   */
  listMicroVMsLeftHolding(hostId: string): Promise<MicroVMRecord[]>;
  /** A publish uses the shared base of `sha`: its generation in force (`generation` if it had none). */
  useSharedBase(sha: string, generation: string, nowIso: string): Promise<string>;
  listSharedBases(): Promise<SharedBaseRecord[]>;
  /** Remove a base's row if it is still `generation` and unused since `usedBeforeIso`; true for the one that did. */
  dropSharedBase(sha: string, generation: string, usedBeforeIso: string): Promise<boolean>;
  /**
   * Record that a SUSPENDED VM's state is in the blob store under `key`: only while it is still the suspend of
   * `suspendedAt` and no resume holds it (a resume or another suspend since makes it stale); false if not.
   */
  publishSuspendedBlob(id: string, suspendedAt: string, key: string): Promise<boolean>;
  /**
   * Move a SUSPENDED VM whose state is in the blob store from `fromHostId` to `toHostId` (compare-and-set: one
   * host wins), with no uid, pid or network slot of the old host's; null if it is no longer so.
   */
  takeSuspendedMicroVM(id: string, fromHostId: string, toHostId: string): Promise<MicroVMRecord | null>;
  /**
   * A resume on `hostId` holds its SUSPENDED VM there: `suspendedBlob` becomes '' (no host takes it over, no late
   * publish records it); false if it is not SUSPENDED on that host.
   */
  holdSuspendedOnHost(id: string, hostId: string): Promise<boolean>;
  /**
   * Under a lock on the tenant (across servers): its usage, VMs in `states` plus live reservations, goes to `check`
   * (which throws to refuse); then `reservation` is held until released or expired (store/quota-reservations.ts).
   */
  reserveTenantUsage(
    reservation: QuotaReservation,
    states: readonly MicroVMState[],
    check: (usage: TenantUsage) => void,
  ): Promise<void>;
  releaseReservation(id: string): Promise<void>;
  /** Every reservation `hostId` made: it restarted or was given up. How many. */
  releaseHostReservations(hostId: string): Promise<number>;
  /** What each of `entries` (MicroVMs on `hostId`) holds on its disk, measured now (store/microvm-storage.ts). */
  recordMicroVMStorage(hostId: string, entries: ReadonlyArray<{ id: string; bytes: number }>): Promise<void>;
  /** The last measured bytes of those of `ids` that were measured. */
  microVMStorage(ids: readonly string[]): Promise<Map<string, number>>;
  /** Measures of VMs that ended, dropped; how many. */
  dropEndedMicroVMStorage(): Promise<number>;
  /** Records from before hosts (no host) become `hostId`'s; how many. */
  claimUnhostedMicroVMs(hostId: string): Promise<number>;
  /**
   * Register a host with a fresh lease (a drained one stays draining); null: another server holds the id on a live
   * lease (store/hosts.ts).
   */
  registerHost(
    host: Omit<HostRecord, 'state' | 'downCount' | 'registeredAt' | 'ready'> & { instanceId: string },
  ): Promise<HostRecord | null>;
  /** Renew a host's lease (a down host is ready again); null if it is not registered. */
  /** `ready`: what it has ready for launches now (lifecycle/placement.ts). */
  renewHostLease(
    id: string,
    heartbeatAt: string,
    leaseExpiresAt: string,
    ready?: readonly string[],
  ): Promise<HostRecord | null>;
  listHosts(): Promise<HostRecord[]>;
  /** Hosts whose lease ran out before `nowIso`, not yet marked down. */
  expiredHosts(nowIso: string): Promise<string[]>;
  /** Mark a host down if its lease is still expired; true for the one caller that did. */
  markHostDown(id: string, nowIso: string): Promise<boolean>;
  /** Per host, what its MicroVMs in `states` take. */
  hostUsage(states: readonly MicroVMState[]): Promise<Map<string, HostUsage>>;
  /** A host draining (placement passes it over, it admits no launch) or ready again; null if not registered. */
  setHostDraining(id: string, draining: boolean): Promise<HostRecord | null>;
  tenantUsage(tenantId: string, states: MicroVMState[]): Promise<TenantUsage>;
  /** All tenants' MicroVMs counted by state (metrics). */
  countMicroVMsByState(): Promise<Partial<Record<MicroVMState, number>>>;
  /** False if a tenant with that name exists (nothing is changed). */
  insertTenant(tenant: TenantRecord): Promise<boolean>;
  getTenant(id: string): Promise<TenantRecord | null>;
  listTenants(): Promise<TenantRecord[]>;
  updateTenantQuotas(id: string, quotas: TenantQuotas): Promise<TenantRecord | null>;
  findApiKey(keyHash: string): Promise<Pick<ApiKeyRecord, 'id' | 'tenantId' | 'isAdmin'> | null>;
  /** Inserting a hash that exists changes nothing. */
  insertApiKey(key: ApiKeyRecord): Promise<void>;
  /** A tenant's keys, oldest first (never their hashes). */
  listApiKeys(tenantId: string): Promise<Array<Omit<ApiKeyRecord, 'keyHash'>>>;
  /** Revoke a tenant's key at once; false if it has no such key. */
  deleteApiKey(tenantId: string, keyId: string): Promise<boolean>;
  /** The admin key is `keyHash` and only that: every other admin key stops working in the same transaction. */
  replaceAdminKey(key: ApiKeyRecord): Promise<void>;
  /**
   * A cluster's admin key (sealed): the one in force, or `candidate` made so when there is none yet (the first
   * server to start; two starting at once agree on one).
   */
  clusterAdminKey(candidate: ApiKeyRecord & { sealedKey: string }): Promise<string>;
  /** Inserting an access key id that exists changes nothing. */
  insertAwsAccessKey(key: AwsAccessKeyRecord): Promise<void>;
  findAwsAccessKey(accessKeyId: string): Promise<AwsAccessKeyRecord | null>;
  /** The pairs of one API key, oldest first. */
  listAwsAccessKeys(keyId: string): Promise<AwsAccessKeyRecord[]>;
  /**
   * Take a client token for a request (an expired one is taken over); when it is held and live, its record
   * instead (the caller compares hashes and waits for its resource).
   */
  claimIdempotencyToken(record: IdempotencyRecord, nowIso: string): Promise<IdempotencyRecord | null>;
  /** The claimed token made `resourceId` (or, with null, its request failed: the token is free again). */
  settleIdempotencyToken(
    key: Pick<IdempotencyRecord, 'tenantId' | 'operation' | 'token'>,
    resourceId: string | null,
  ): Promise<void>;
  /** A new version numbered one past the image's highest (1 for a new image). */
  /** The next version of the image; clears a tombstone that number may have. */
  insertImageVersion(record: Omit<ImageVersionRecord, 'version'>): Promise<ImageVersionRecord>;
  updateImageVersion(tenantId: string, name: string, version: number, patch: ImageVersionPatch): Promise<void>;
  getImageVersion(tenantId: string, name: string, version: number): Promise<ImageVersionRecord | null>;
  /** A tenant's versions (of one image, or all), by name then version. */
  listImageVersions(tenantId: string, name?: string): Promise<ImageVersionRecord[]>;
  /**
   * Deleting an image's last version deletes its tags too. Each deletion leaves a tombstone (version 0: the whole
   * image, when it was the last) for 8 h, so a repeated AWS delete answers DELETED instead of not found.
   */
  deleteImageVersion(tenantId: string, name: string, version: number): Promise<void>;
  /** Was this version (0: the whole image) deleted within the last 8 h? */
  isImageTombstoned(tenantId: string, name: string, version: number): Promise<boolean>;
  /** Set (add or replace) tags of image `name`. */
  setImageTags(tenantId: string, name: string, tags: Record<string, string>): Promise<void>;
  removeImageTags(tenantId: string, name: string, keys: string[]): Promise<void>;
  listImageTags(tenantId: string, name: string): Promise<Record<string, string>>;
  /** Versions in these states across tenants (builds cut short by a restart). */
  /** With `buildHostId`: only the versions that host builds (and those with no build host on record). */
  listImageVersionsInStates(states: ImageBuildState[], buildHostId?: string): Promise<ImageVersionRecord[]>;
  close(): Promise<void>;
}
