// Server configuration: embedded defaults, overridden by environment, overridden by CLI flags. The
// environment variables, their schemas and defaults are the table in config-env.ts; this turns what it
// reads into the CapsuleConfig every module takes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST_ID, type SuspendStep, type TenantQuotas } from '@capsule/protocol';
import type { S3Config } from './blobs/s3-blob-store.js';
import { ConfigError, type ImagePool, type UidRange } from './config-parsers.js';
import type { DiskReserveConfig } from './disk-reserve.js';
import { parseEnv, type EnvValues } from './config-env.js';

export { ConfigError } from './config-parsers.js';

export interface SystemQuota {
  maxVms: number;
  maxMemoryMib: number;
}

/** What the API allows per tenant and per connection (enforced in lifecycle/limits.ts and api/server.ts). */
export interface ApiLimits {
  /** Launches (and resumes) a tenant may start per second, sustained, and in one burst. */
  launchesPerSecond: number;
  launchBurst: number;
  /** Exec and shell sessions open at once. */
  sessionsPerVm: number;
  sessionsPerTenant: number;
  /** Endpoint connections (proxied TCP streams) open at once. */
  tunnelsPerVm: number;
  tunnelsPerTenant: number;
  /**
   * Server-wide, against slow clients: whole headers within this long, a whole request (body included) within
   * `requestTimeoutMs`.
   */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Connections the API server holds at once. */
  maxConnections: number;
}

export type AcceleratorChoice = 'auto' | 'kvm' | 'tcg';

export interface CapsuleConfig {
  dataDir: string;
  /** Where setup caches built runtimes (shared by every data dir on the machine). */
  cacheDir: string;
  host: string;
  port: number;
  accelerator: AcceleratorChoice;
  qemuBinary: string;
  qemuImgBinary: string;
  agentBundlePath: string;
  /** The web console's built files (packages/console/dist), served under /console. */
  consoleDir: string;
  /** The jail's launcher (packages/server/native/capsule-jail.c, built beside the bundles). */
  jailLauncherPath: string;
  bootTimeoutMs: number;
  defaultMemoryMib: number;
  defaultVcpuCount: number;
  maxDurationCapSeconds: number;
  /** Launch from ready snapshots (built in the background at start); off = always cold boot. */
  snapshots: boolean;
  /** Paused clones kept per runtime at the default shape (lifecycle/warm-pool.ts); 0: none. */
  warmPoolSize: number;
  /** Tenants' images with a warm pool of their own, and its size. */
  warmPoolImages: ImagePool[];
  /** Host memory (MemAvailable, MiB) the warm pool leaves free: below it, it drains. */
  warmPoolMinAvailableMib: number;
  /** Where ready snapshots are kept (machine-wide, like the runtimes they are taken from). */
  snapshotDir: string;
  /** Ready snapshots kept per runtime (one per VM shape), and their bytes: least recently used pruned first. */
  snapshotsPerRuntime: number;
  snapshotBytesPerRuntime: number;
  /** Appended to every guest kernel command line (operators debugging a guest; tests injecting faults). */
  extraKernelArgs: string;
  /** The uids (and gids) QEMUs run as, one per VM (CAPSULE_UID_RANGE, default 200000-264999). */
  uidRange: UidRange;
  /** Where the cgroup filesystems are mounted (CAPSULE_CGROUP_MOUNT, default /sys/fs/cgroup). */
  cgroupMount: string;
  /** CAPSULE_UNSAFE_NO_JAIL=1: QEMU unjailed as the server's user (development only; logged loudly). */
  unsafeNoJail: boolean;
  /** QEMU's memory beyond guest RAM in a VM's cgroup limit (CAPSULE_VM_MEMORY_OVERHEAD_MIB); null: measured default. */
  vmMemoryOverheadMib: number | null;
  /** Where image zips, layers and snapshots are kept: null = <dataDir>/blobs; or s3://bucket[/prefix]. */
  blobs: string | null;
  /** S3-compatible storage for `s3://` code URIs (and s3:// blobs); null when not configured. */
  s3: S3Config | null;
  /**
   * The only places a tenant's `s3://` codeUri may name (CAPSULE_S3_CODE_PREFIXES, comma-separated
   * s3://bucket or s3://bucket/prefix/): the server's credentials can read more than any one tenant may.
   * Empty (the default): uploads only. Never Capsule's own blob prefix.
   */
  s3CodePrefixes: string[];
  /** Versions kept per image: a new one prunes the oldest unused (CAPSULE_MAX_IMAGE_VERSIONS, default 20). */
  maxVersionsPerImage: number;
  /** The longest an image build may take. */
  buildTimeoutMs: number;
  /** How long a launched image's app gets to accept connections on its port. */
  appReadyTimeoutMs: number;
  /** Launches from an image read ahead the snapshot pages its validate step touched (CAPSULE_PAGE_PREFETCH). */
  pagePrefetch: boolean;
  /** MicroVM endpoints answer at http://{id}.{baseDomain}:{port} (and {guestPort}-{id}.{baseDomain}). */
  baseDomain: string;
  /** The API's public URL (CAPSULE_PUBLIC_URL); null: the Host each client called. */
  publicUrl: string | null;
  /** How the AWS API's `endpoint` is written: a path on the public URL, or a host name under baseDomain. */
  awsEndpointForm: 'path' | 'host';
  /** This host's id among hosts sharing a database (CAPSULE_HOST_ID; default: the machine's host name). */
  hostId: string;
  /** Where other nodes reach this host (CAPSULE_ADVERTISE_URL); null: http://<host>:<port> once listening. */
  advertiseUrl: string | null;
  /** The secret every server on one database shares (CAPSULE_CLUSTER_KEY): endpoint tokens' key; null: none. */
  clusterKey: string | null;
  /**
   * all: the whole product; host: runs VMs, answers only requests other servers of its cluster sign; api: runs no
   * VM, serves the API and sends every MicroVM's work to its host (CAPSULE_ROLE).
   */
  role: 'all' | 'host' | 'api';
  /** Guest memory this host admits in all (CAPSULE_HOST_MAX_MEMORY_MIB); null: no cap. */
  hostMaxMemoryMib: number | null;
  /** Launches onto the host with the most memory free (spread) or the least that fits (pack) (CAPSULE_PLACEMENT). */
  placement: 'spread' | 'pack';
  /** How long a host's lease lasts; it renews every third of it (lifecycle/host-lease.ts). */
  hostLeaseMs: number;
  /** postgres://… to keep state in Postgres; null: SQLite in the data dir. */
  databaseUrl: string | null;
  /** Where VM uplink /30s come from (CAPSULE_NET_POOL), and how many namespaces are kept ready. */
  netPool: string;
  netPoolSize: number;
  /** Private CIDRs the operator opens to every VM's egress (CAPSULE_EGRESS_PRIVATE_ALLOW, comma-separated). */
  egressPrivateAllow: string[];
  /**
   * Endpoints reach guest ports through the VM's namespace when the app listens there (CAPSULE_ENDPOINT_DIRECT=off:
   * always the agent tunnel).
   */
  endpointDirect: boolean;
  /** Testing only: every suspend waits this long at this step (CAPSULE_TEST_HALT_SUSPEND). */
  testHaltSuspend: { step: SuspendStep; ms: number } | null;
  /** Guest ports where a flow admitted only by a domain rule must say a listed name (CAPSULE_EGRESS_NAME_PORTS). */
  egressNamePorts: number[];
  /** ip[:port] guests' names are resolved with (CAPSULE_DNS_UPSTREAM); null: the host's resolv.conf. */
  dnsUpstream: string | null;
  /** Quotas of a tenant created without its own (and of the admin's default tenant). */
  defaultQuotas: TenantQuotas;
  /** Builder and snapshot VMs together: how many at once, and their guest memory (system-vms.ts). */
  systemQuota: SystemQuota;
  /** Free space kept on the data and cache filesystems: under it, launches, builds and suspends answer 507. */
  diskReserve: DiskReserveConfig;
  /**
   * Per-tenant API limits: launches per second, sessions and endpoint connections open at once (lifecycle/limits.ts).
   */
  apiLimits: ApiLimits;
}

/** Walk up from this file to the repository root (works from src/ under tsx and from the bundle). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'packages', 'guest-agent'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot locate the Capsule repository root');
    dir = parent;
  }
}

/** The machine's host name as a host id (its first label, characters a host id cannot hold as `-`). */
export function machineHostId(hostname = os.hostname()): string {
  const id = (hostname.split('.')[0] ?? '').replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63);
  return HOST_ID.test(id) ? id : 'host';
}

function systemQuotaOf(e: EnvValues): SystemQuota {
  return { maxVms: e.CAPSULE_SYSTEM_VMS, maxMemoryMib: e.CAPSULE_SYSTEM_MEMORY_MIB };
}

function apiLimitsOf(e: EnvValues): ApiLimits {
  return {
    launchesPerSecond: e.CAPSULE_LAUNCHES_PER_SECOND,
    launchBurst: e.CAPSULE_LAUNCH_BURST,
    sessionsPerVm: e.CAPSULE_SESSIONS_PER_VM,
    sessionsPerTenant: e.CAPSULE_SESSIONS_PER_TENANT,
    tunnelsPerVm: e.CAPSULE_TUNNELS_PER_VM,
    tunnelsPerTenant: e.CAPSULE_TUNNELS_PER_TENANT,
    headersTimeoutMs: e.CAPSULE_HTTP_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: e.CAPSULE_HTTP_REQUEST_TIMEOUT_MS,
    maxConnections: e.CAPSULE_HTTP_MAX_CONNECTIONS,
  };
}

const DEFAULTS = parseEnv({});
/** The system quota with no CAPSULE_SYSTEM_* set: room for a build of the largest shape and a snapshot beside it. */
export const DEFAULT_SYSTEM_QUOTA: SystemQuota = systemQuotaOf(DEFAULTS);
/** The API limits with no limit variable set (config-env.ts has each default). */
export const DEFAULT_API_LIMITS: ApiLimits = apiLimitsOf(DEFAULTS);

/**
 * The configuration: `env` read through the table of config-env.ts (a bad variable throws ConfigError
 * naming it), then `overrides` (CLI flags, tests) where they are defined.
 */
export function loadConfig(
  overrides: Partial<CapsuleConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
): CapsuleConfig {
  const root = repoRoot();
  const e = parseEnv(env);
  const config: CapsuleConfig = {
    dataDir: path.resolve(e.CAPSULE_DATA_DIR),
    cacheDir: e.CAPSULE_CACHE_DIR,
    host: e.CAPSULE_HOST,
    port: e.CAPSULE_PORT,
    accelerator: e.CAPSULE_ACCELERATOR,
    qemuBinary: e.CAPSULE_QEMU,
    qemuImgBinary: e.CAPSULE_QEMU_IMG,
    agentBundlePath: path.join(root, 'packages', 'guest-agent', 'dist', 'agent.js'),
    consoleDir: path.join(root, 'packages', 'console', 'dist'),
    jailLauncherPath: path.join(root, 'packages', 'server', 'dist', 'capsule-jail'),
    bootTimeoutMs: e.CAPSULE_BOOT_TIMEOUT_MS,
    defaultMemoryMib: 512,
    defaultVcpuCount: 1,
    maxDurationCapSeconds: e.CAPSULE_MAX_DURATION_CAP_SECONDS,
    extraKernelArgs: e.CAPSULE_EXTRA_KERNEL_ARGS,
    snapshots: e.CAPSULE_SNAPSHOTS,
    warmPoolSize: e.CAPSULE_WARM_POOL_SIZE,
    warmPoolImages: e.CAPSULE_WARM_POOL_IMAGES ?? [],
    warmPoolMinAvailableMib: e.CAPSULE_WARM_POOL_MIN_AVAILABLE_MIB,
    snapshotsPerRuntime: e.CAPSULE_SNAPSHOTS_PER_RUNTIME,
    snapshotBytesPerRuntime: e.CAPSULE_SNAPSHOT_MIB_PER_RUNTIME * 1024 * 1024,
    snapshotDir: e.CAPSULE_SNAPSHOT_DIR ?? path.join(e.CAPSULE_CACHE_DIR, 'snapshots'),
    uidRange: e.CAPSULE_UID_RANGE,
    unsafeNoJail: e.CAPSULE_UNSAFE_NO_JAIL,
    cgroupMount: e.CAPSULE_CGROUP_MOUNT,
    vmMemoryOverheadMib: e.CAPSULE_VM_MEMORY_OVERHEAD_MIB ?? null,
    baseDomain: e.CAPSULE_BASE_DOMAIN,
    publicUrl: e.CAPSULE_PUBLIC_URL ?? null,
    awsEndpointForm: e.CAPSULE_AWS_ENDPOINT_FORM,
    s3:
      e.CAPSULE_S3_ENDPOINT || e.CAPSULE_S3_ACCESS_KEY_ID
        ? {
            endpoint: e.CAPSULE_S3_ENDPOINT ?? null,
            region: e.CAPSULE_S3_REGION,
            accessKeyId: e.CAPSULE_S3_ACCESS_KEY_ID ?? '',
            secretAccessKey: e.CAPSULE_S3_SECRET_ACCESS_KEY ?? '',
            forcePathStyle: e.CAPSULE_S3_FORCE_PATH_STYLE,
          }
        : null,
    blobs: e.CAPSULE_BLOBS ?? null,
    s3CodePrefixes: e.CAPSULE_S3_CODE_PREFIXES,
    maxVersionsPerImage: e.CAPSULE_MAX_IMAGE_VERSIONS,
    buildTimeoutMs: e.CAPSULE_BUILD_TIMEOUT_MS,
    appReadyTimeoutMs: e.CAPSULE_APP_READY_TIMEOUT_MS,
    pagePrefetch: e.CAPSULE_PAGE_PREFETCH,
    databaseUrl: e.DATABASE_URL ?? null,
    hostId: e.CAPSULE_HOST_ID ?? machineHostId(),
    advertiseUrl: e.CAPSULE_ADVERTISE_URL ?? null,
    hostLeaseMs: e.CAPSULE_HOST_LEASE_MS,
    hostMaxMemoryMib: e.CAPSULE_HOST_MAX_MEMORY_MIB ?? null,
    placement: e.CAPSULE_PLACEMENT,
    clusterKey: e.CAPSULE_CLUSTER_KEY ?? null,
    role: e.CAPSULE_ROLE,
    netPool: e.CAPSULE_NET_POOL,
    netPoolSize: e.CAPSULE_NET_POOL_SIZE,
    egressPrivateAllow: e.CAPSULE_EGRESS_PRIVATE_ALLOW,
    dnsUpstream: e.CAPSULE_DNS_UPSTREAM ?? null,
    egressNamePorts: e.CAPSULE_EGRESS_NAME_PORTS,
    endpointDirect: e.CAPSULE_ENDPOINT_DIRECT,
    testHaltSuspend: e.CAPSULE_TEST_HALT_SUSPEND ?? null,
    defaultQuotas: {
      maxRunningMicroVMs: e.CAPSULE_QUOTA_RUNNING_MICROVMS,
      maxVcpus: e.CAPSULE_QUOTA_VCPUS,
      maxMemoryMib: e.CAPSULE_QUOTA_MEMORY_MIB,
      maxStorageMib: e.CAPSULE_QUOTA_STORAGE_MIB,
    },
    systemQuota: systemQuotaOf(e),
    diskReserve: { mib: e.CAPSULE_DISK_RESERVE_MIB, percent: e.CAPSULE_DISK_RESERVE_PERCENT },
    apiLimits: apiLimitsOf(e),
  };
  return { ...config, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}

/** A host of a cluster shares its database, its blob store and its key with the other servers: all three are set. */
export function checkRole(config: Pick<CapsuleConfig, 'role' | 'databaseUrl' | 'blobs' | 'clusterKey'>): void {
  if (config.role === 'all') return;
  const missing = [
    /^postgres(ql)?:\/\//.test(config.databaseUrl ?? '') ? null : 'DATABASE_URL=postgres://…',
    config.blobs?.startsWith('s3://') ? null : 'CAPSULE_BLOBS=s3://…',
    config.clusterKey ? null : 'CAPSULE_CLUSTER_KEY',
  ].filter((m) => m !== null);
  if (missing.length > 0)
    throw new ConfigError(
      `CAPSULE_ROLE=${config.role} needs ${missing.join(', ')}: the servers of a cluster share one database, ` +
        'one blob store and one key',
    );
}
