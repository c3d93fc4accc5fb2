// Server configuration: embedded defaults, overridden by environment, overridden by CLI flags.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCidr, SHAPE_LIMITS, type TenantQuotas } from '@capsule/protocol';
import type { S3Config } from './blobs/s3-blob-store.js';
import { parseUidRange, type UidRange } from './jail/uid-pool.js';
import { DEFAULT_DISK_RESERVE, type DiskReserveConfig } from './disk-reserve.js';

export interface SystemQuota {
  maxVms: number;
  maxMemoryMib: number;
}
/** Room for a build of the largest shape and a snapshot beside it. */
export const DEFAULT_SYSTEM_QUOTA: SystemQuota = { maxVms: 2, maxMemoryMib: 2 * SHAPE_LIMITS.maxMemoryMib };

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
  /** Server-wide, against slow clients: whole headers within this long, a whole request (body included) within `requestTimeoutMs`. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Connections the API server holds at once. */
  maxConnections: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  launchesPerSecond: 10,
  launchBurst: 20,
  sessionsPerVm: 64,
  sessionsPerTenant: 512,
  tunnelsPerVm: 512,
  tunnelsPerTenant: 4096,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 30 * 60_000,
  maxConnections: 16_384,
};

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
  bootTimeoutMs: number;
  defaultMemoryMib: number;
  defaultVcpuCount: number;
  maxDurationCapSeconds: number;
  /** Launch from ready snapshots (built in the background at start); off = always cold boot. */
  snapshots: boolean;
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
  /** MicroVM endpoints answer at http://{id}.{baseDomain}:{port} (and {guestPort}-{id}.{baseDomain}). */
  baseDomain: string;
  /** postgres://… to keep state in Postgres; null: SQLite in the data dir. */
  databaseUrl: string | null;
  /** Where VM uplink /30s come from (CAPSULE_NET_POOL), and how many namespaces are kept ready. */
  netPool: string;
  netPoolSize: number;
  /** Private CIDRs the operator opens to every VM's egress (CAPSULE_EGRESS_PRIVATE_ALLOW, comma-separated). */
  egressPrivateAllow: string[];
  /** Endpoints reach guest ports through the VM's namespace when the app listens there (CAPSULE_ENDPOINT_DIRECT=off: always the agent tunnel). */
  endpointDirect: boolean;
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
  /** Per-tenant API limits: launches per second, sessions and endpoint connections open at once (lifecycle/limits.ts). */
  apiLimits: ApiLimits;
}

/** Walk up from this file to the repository root (works from src/ under tsx and from the bundle). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'packages', 'guest-agent'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot locate the Capsule repository root');
    dir = parent;
  }
}

function intFromEnv(value: string | undefined, fallback: number): number {
  const n = value === undefined ? NaN : Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

function nonNegativeInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, got "${value}"`);
  return n;
}

/** An optional whole number >= 0 from the environment: `fallback` when unset, an error when malformed. */
function nonNegativeIntOr<T>(name: string, value: string | undefined, fallback: T): number | T {
  return value === undefined ? fallback : nonNegativeInt(name, value);
}

function privateAllow(setting: string | undefined): string[] {
  const entries = (setting ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  for (const e of entries)
    if (!parseCidr(e)) throw new Error(`CAPSULE_EGRESS_PRIVATE_ALLOW: "${e}" is not an IPv4 CIDR without host bits`);
  return entries.map((e) => (e.includes('/') ? e : `${e}/32`));
}

function portList(setting: string): number[] {
  const ports = setting
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map(Number);
  if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535) || ports.length > 16)
    throw new Error(`CAPSULE_EGRESS_NAME_PORTS must be up to 16 comma-separated ports, got ${setting}`);
  return [...new Set(ports)];
}

function codePrefixes(setting: string): string[] {
  const prefixes = setting
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of prefixes)
    if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,62}(\/.*)?$/.test(p))
      throw new Error(`CAPSULE_S3_CODE_PREFIXES: "${p}" is not s3://bucket or s3://bucket/prefix/`);
  return prefixes;
}

export function loadConfig(
  overrides: Partial<CapsuleConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
): CapsuleConfig {
  const root = repoRoot();
  const accel = env.CAPSULE_ACCELERATOR;
  const config: CapsuleConfig = {
    dataDir: path.resolve(env.CAPSULE_DATA_DIR ?? '.capsule'),
    cacheDir: env.CAPSULE_CACHE_DIR ?? '/var/cache/capsule',
    host: env.CAPSULE_HOST ?? '127.0.0.1',
    port: intFromEnv(env.CAPSULE_PORT, 7070),
    accelerator: accel === 'kvm' || accel === 'tcg' ? accel : 'auto',
    qemuBinary: env.CAPSULE_QEMU ?? 'qemu-system-x86_64',
    qemuImgBinary: env.CAPSULE_QEMU_IMG ?? 'qemu-img',
    agentBundlePath: path.join(root, 'packages', 'guest-agent', 'dist', 'agent.js'),
    bootTimeoutMs: intFromEnv(env.CAPSULE_BOOT_TIMEOUT_MS, 90_000),
    defaultMemoryMib: 512,
    defaultVcpuCount: 1,
    maxDurationCapSeconds: intFromEnv(env.CAPSULE_MAX_DURATION_CAP_SECONDS, 28_800),
    extraKernelArgs: env.CAPSULE_EXTRA_KERNEL_ARGS ?? '',
    snapshots: env.CAPSULE_SNAPSHOTS !== 'off',
    snapshotsPerRuntime: intFromEnv(env.CAPSULE_SNAPSHOTS_PER_RUNTIME, 4),
    snapshotBytesPerRuntime: intFromEnv(env.CAPSULE_SNAPSHOT_MIB_PER_RUNTIME, 8192) * 1024 * 1024,
    snapshotDir: env.CAPSULE_SNAPSHOT_DIR ?? path.join(env.CAPSULE_CACHE_DIR ?? '/var/cache/capsule', 'snapshots'),
    uidRange: parseUidRange(env.CAPSULE_UID_RANGE ?? '200000-264999'),
    unsafeNoJail: env.CAPSULE_UNSAFE_NO_JAIL === '1',
    cgroupMount: env.CAPSULE_CGROUP_MOUNT ?? '/sys/fs/cgroup',
    vmMemoryOverheadMib: nonNegativeIntOr('CAPSULE_VM_MEMORY_OVERHEAD_MIB', env.CAPSULE_VM_MEMORY_OVERHEAD_MIB, null),
    baseDomain: env.CAPSULE_BASE_DOMAIN ?? 'localhost',
    s3:
      env.CAPSULE_S3_ENDPOINT || env.CAPSULE_S3_ACCESS_KEY_ID
        ? {
            endpoint: env.CAPSULE_S3_ENDPOINT || null,
            region: env.CAPSULE_S3_REGION ?? 'us-east-1',
            accessKeyId: env.CAPSULE_S3_ACCESS_KEY_ID ?? '',
            secretAccessKey: env.CAPSULE_S3_SECRET_ACCESS_KEY ?? '',
            forcePathStyle: env.CAPSULE_S3_FORCE_PATH_STYLE !== 'false',
          }
        : null,
    blobs: env.CAPSULE_BLOBS || null,
    s3CodePrefixes: codePrefixes(env.CAPSULE_S3_CODE_PREFIXES ?? ''),
    maxVersionsPerImage: intFromEnv(env.CAPSULE_MAX_IMAGE_VERSIONS, 20),
    buildTimeoutMs: intFromEnv(env.CAPSULE_BUILD_TIMEOUT_MS, 20 * 60_000),
    appReadyTimeoutMs: intFromEnv(env.CAPSULE_APP_READY_TIMEOUT_MS, 60_000),
    databaseUrl: env.DATABASE_URL || null,
    netPool: env.CAPSULE_NET_POOL ?? '10.200.0.0/16',
    netPoolSize: env.CAPSULE_NET_POOL_SIZE === '0' ? 0 : intFromEnv(env.CAPSULE_NET_POOL_SIZE, 2),
    egressPrivateAllow: privateAllow(env.CAPSULE_EGRESS_PRIVATE_ALLOW),
    dnsUpstream: env.CAPSULE_DNS_UPSTREAM || null,
    egressNamePorts: portList(env.CAPSULE_EGRESS_NAME_PORTS ?? '80,443'),
    endpointDirect: env.CAPSULE_ENDPOINT_DIRECT !== 'off',
    defaultQuotas: {
      maxRunningMicroVMs: intFromEnv(env.CAPSULE_QUOTA_RUNNING_MICROVMS, 100),
      maxVcpus: intFromEnv(env.CAPSULE_QUOTA_VCPUS, 200),
      maxMemoryMib: intFromEnv(env.CAPSULE_QUOTA_MEMORY_MIB, 200 * 1024),
      maxStorageMib: intFromEnv(env.CAPSULE_QUOTA_STORAGE_MIB, 100 * 1024),
    },
    systemQuota: {
      maxVms: intFromEnv(env.CAPSULE_SYSTEM_VMS, DEFAULT_SYSTEM_QUOTA.maxVms),
      maxMemoryMib: intFromEnv(env.CAPSULE_SYSTEM_MEMORY_MIB, DEFAULT_SYSTEM_QUOTA.maxMemoryMib),
    },
    diskReserve: {
      mib: nonNegativeIntOr('CAPSULE_DISK_RESERVE_MIB', env.CAPSULE_DISK_RESERVE_MIB, DEFAULT_DISK_RESERVE.mib),
      percent: nonNegativeIntOr(
        'CAPSULE_DISK_RESERVE_PERCENT',
        env.CAPSULE_DISK_RESERVE_PERCENT,
        DEFAULT_DISK_RESERVE.percent,
      ),
    },
    apiLimits: {
      launchesPerSecond: intFromEnv(env.CAPSULE_LAUNCHES_PER_SECOND, DEFAULT_API_LIMITS.launchesPerSecond),
      launchBurst: intFromEnv(env.CAPSULE_LAUNCH_BURST, DEFAULT_API_LIMITS.launchBurst),
      sessionsPerVm: intFromEnv(env.CAPSULE_SESSIONS_PER_VM, DEFAULT_API_LIMITS.sessionsPerVm),
      sessionsPerTenant: intFromEnv(env.CAPSULE_SESSIONS_PER_TENANT, DEFAULT_API_LIMITS.sessionsPerTenant),
      tunnelsPerVm: intFromEnv(env.CAPSULE_TUNNELS_PER_VM, DEFAULT_API_LIMITS.tunnelsPerVm),
      tunnelsPerTenant: intFromEnv(env.CAPSULE_TUNNELS_PER_TENANT, DEFAULT_API_LIMITS.tunnelsPerTenant),
      headersTimeoutMs: intFromEnv(env.CAPSULE_HTTP_HEADERS_TIMEOUT_MS, DEFAULT_API_LIMITS.headersTimeoutMs),
      requestTimeoutMs: intFromEnv(env.CAPSULE_HTTP_REQUEST_TIMEOUT_MS, DEFAULT_API_LIMITS.requestTimeoutMs),
      maxConnections: intFromEnv(env.CAPSULE_HTTP_MAX_CONNECTIONS, DEFAULT_API_LIMITS.maxConnections),
    },
  };
  return { ...config, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}
