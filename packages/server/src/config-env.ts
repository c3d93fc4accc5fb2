// Every environment variable the server reads, in one table: its schema (config-parsers.ts), its default
// and what it does. `parseEnv` reads them all and refuses a bad one by name (ConfigError); config.ts
// turns the result into a CapsuleConfig, and `npm run env-table` writes README's table from `ENV_VARS`.
// An empty value is the same as an unset one: the default applies.
import { HOST_ID, SHAPE_LIMITS, SUSPEND_STEPS } from '@capsule/protocol';
import type { z } from 'zod';
import { DEFAULT_DISK_RESERVE } from './disk-reserve.js';
import * as p from './config-parsers.js';
import { ConfigError } from './config-parsers.js';

export const ENV_GROUPS = {
  server: 'Server',
  network: 'Network',
  storage: 'Storage, S3 and database',
  quotas: 'Quotas of tenants created without their own, and of system VMs',
  limits: 'Limits (per tenant, 429 when crossed; the HTTP ones server-wide)',
} as const;

interface EnvVarBase<T> {
  group: keyof typeof ENV_GROUPS;
  schema: z.ZodType<T, string>;
  /** What it does, with its unit. */
  doc: string;
}
/** A variable with a default: its text, read by the same schema as a set value. */
export interface DefaultedVar<T> extends EnvVarBase<T> {
  default: string;
}
/** A variable without a default value: unset, the setting is absent, and `unset` says what happens then. */
export interface OptionalVar<T> extends EnvVarBase<T> {
  unset: string;
}
export type EnvVar = DefaultedVar<unknown> | OptionalVar<unknown>;

const set = <T>(group: EnvVarBase<T>['group'], schema: z.ZodType<T, string>, dflt: string, doc: string) =>
  ({ group, schema, default: dflt, doc }) satisfies DefaultedVar<T>;
const opt = <T>(group: EnvVarBase<T>['group'], schema: z.ZodType<T, string>, unset: string, doc: string) =>
  ({ group, schema, unset, doc }) satisfies OptionalVar<T>;

/** Room for a build of the largest shape and a snapshot beside it. */
const SYSTEM_MEMORY_MIB = 2 * SHAPE_LIMITS.maxMemoryMib;

export const ENV_VARS = {
  CAPSULE_DATA_DIR: set(
    'server',
    p.text(),
    '.capsule',
    'Where the server keeps its state (VMs, images, keys, the SQLite database); relative to the working directory.',
  ),
  CAPSULE_CACHE_DIR: set(
    'server',
    p.text(),
    '/var/cache/capsule',
    'Where setup caches built runtimes (shared by every data dir on the machine).',
  ),
  CAPSULE_HOST: set('server', p.text(), '127.0.0.1', 'The address the API listens on.'),
  CAPSULE_PORT: set('server', p.int(0, 65535), '7070', 'The port the API listens on (0: any free port).'),
  CAPSULE_ACCELERATOR: set(
    'server',
    p.oneOf(['auto', 'kvm', 'tcg'] as const),
    'auto',
    'auto: KVM only if cpuinfo has vmx/svm and a probe VM boots under it; the choice and its reason are ' +
      'logged and shown by `/healthz`.',
  ),
  CAPSULE_QEMU: set('server', p.text(), 'qemu-system-x86_64', 'The QEMU binary (a name looked up in PATH, or a path).'),
  CAPSULE_QEMU_IMG: set('server', p.text(), 'qemu-img', 'The qemu-img binary (a name looked up in PATH, or a path).'),
  CAPSULE_ROLE: set(
    'server',
    p.oneOf(['all', 'host', 'api'] as const),
    'all',
    'all: the whole product on one server (API, console, endpoints, VMs). host: a server of a cluster that runs ' +
      'VMs and answers only requests another server of the cluster signs (forwarded API and endpoint requests, ' +
      'moves). api: a server of a cluster that runs no VM: it serves the API, the console and endpoints and sends ' +
      "each MicroVM's work to its host; run several. host and api need DATABASE_URL (Postgres), " +
      'CAPSULE_BLOBS=s3://… and CAPSULE_CLUSTER_KEY.',
  ),
  CAPSULE_HOST_ID: opt(
    'server',
    p.matching(HOST_ID, '1-63 letters, digits, dots, dashes or underscores'),
    "the machine's host name",
    "This host's id among the hosts sharing a database (`capsule hosts ls`); its MicroVMs carry it as hostId.",
  ),
  CAPSULE_ADVERTISE_URL: opt(
    'server',
    p.url(['http://', 'https://']),
    'http://<CAPSULE_HOST>:<port>',
    'Where other Capsule nodes reach this host.',
  ),
  CAPSULE_CLUSTER_KEY: opt(
    'server',
    p.matching(/^\S{32,}$/, 'at least 32 characters without spaces'),
    "each server signs endpoint tokens with its data dir's own key",
    'A secret every server on one database shares: endpoint tokens are signed with a key derived from it, so a ' +
      'token any server makes works on all of them. Set it on every server of a multi-host set-up.',
  ),
  CAPSULE_HOST_MAX_MEMORY_MIB: opt(
    'server',
    p.int(256),
    'no cap: tenant quotas and host memory decide',
    'Guest memory this host admits in all, in MiB: a launch or resume beyond it is 503 HOST_FULL. Also the ' +
      'memory it offers when launches are placed over several hosts.',
  ),
  CAPSULE_PLACEMENT: set(
    'server',
    p.oneOf(['spread', 'pack'] as const),
    'spread',
    'Where a launch goes among the hosts with room, after those that have it ready (a warm clone, a cached ' +
      'snapshot): spread, the most memory free; pack, the least. Set the same on every server.',
  ),
  CAPSULE_HOST_LEASE_MS: set(
    'server',
    p.int(1000),
    '15000',
    'A host renews its lease every third of this, in ms; a host that has not renewed for this long is down and ' +
      'its running MicroVMs FAILED.',
  ),
  CAPSULE_BOOT_TIMEOUT_MS: set(
    'server',
    p.int(),
    '90000',
    'How long a VM gets to boot until its agent answers, in ms.',
  ),
  CAPSULE_MAX_DURATION_CAP_SECONDS: set(
    'server',
    p.int(),
    '28800',
    "The longest a MicroVM may live, in seconds: a launch's default maximum duration; a longer one is refused.",
  ),
  CAPSULE_EXTRA_KERNEL_ARGS: set(
    'server',
    p.text(),
    '',
    'Appended to every guest kernel command line (operators debugging a guest; tests injecting faults).',
  ),
  CAPSULE_UID_RANGE: set(
    'server',
    p.uidRange(),
    '200000-264999',
    'The uids (and gids) QEMUs run as, one per VM: FIRST-LAST, FIRST >= 1000; no passwd entries needed.',
  ),
  CAPSULE_UNSAFE_NO_JAIL: set(
    'server',
    p.onOff(),
    'off',
    'on: QEMU runs unjailed as the server user, no cgroup limits (development only; logged loudly).',
  ),
  CAPSULE_TEST_HALT_SUSPEND: opt(
    'server',
    p.stepHalt(SUSPEND_STEPS),
    'suspends never wait',
    'Testing only: every suspend waits MS milliseconds at STEP (`saved:5000`; steps: paused, saved, moved, ' +
      'published), so a test can kill QEMU or the server there. Logged at each halt.',
  ),
  CAPSULE_CGROUP_MOUNT: set('server', p.text(), '/sys/fs/cgroup', 'Where the cgroup filesystems are mounted.'),
  CAPSULE_VM_MEMORY_OVERHEAD_MIB: opt(
    'server',
    p.int(0),
    '192 under TCG, 96 under KVM',
    "QEMU's memory on top of guest RAM in a VM's cgroup limit, in MiB.",
  ),
  CAPSULE_LOG: set(
    'server',
    p.oneOf(['info', 'silent'] as const),
    'info',
    'silent: log warnings and errors only (log lines are JSON on stderr).',
  ),
  CAPSULE_SNAPSHOTS: set(
    'server',
    p.onOff(),
    'on',
    'Launch from ready snapshots (built in the background at start); off: always cold boot.',
  ),
  CAPSULE_WARM_POOL_SIZE: set(
    'server',
    p.int(0, 16),
    '2',
    'Clones of each runtime (at the default shape) kept restored and paused, so a launch claims one instead of ' +
      'restoring; refilled in the background, never counted against a tenant. 0: no warm pool.',
  ),
  CAPSULE_WARM_POOL_IMAGES: opt(
    'server',
    p.imagePools(),
    'no image has a warm pool',
    "Warm pools of tenants' images, as `tenant/image=clones` (comma-separated): clones of the image's newest " +
      'built version, restored from its app snapshot with the app serving; a launch of that version at its ' +
      'shape claims one, and its `run` hook runs then.',
  ),
  CAPSULE_WARM_POOL_MIN_AVAILABLE_MIB: set(
    'server',
    p.int(0),
    '2048',
    'The host memory (MemAvailable) the warm pool leaves free, in MiB: below it the pool stops its clones ' +
      'and refills only once there is room again.',
  ),
  CAPSULE_SNAPSHOT_DIR: opt(
    'server',
    p.text(),
    '`<CAPSULE_CACHE_DIR>/snapshots`',
    'Where ready snapshots are kept (machine-wide, like the runtimes they are taken from).',
  ),
  CAPSULE_SNAPSHOTS_PER_RUNTIME: set(
    'server',
    p.int(),
    '4',
    'Ready snapshots kept per runtime (one per VM shape); least recently used pruned first. Snapshot VMs run ' +
      'one at a time.',
  ),
  CAPSULE_SNAPSHOT_MIB_PER_RUNTIME: set(
    'server',
    p.int(),
    '8192',
    "Ready snapshots' size kept per runtime, in MiB; least recently used pruned first.",
  ),
  CAPSULE_MAX_IMAGE_VERSIONS: set(
    'server',
    p.int(),
    '20',
    'Versions kept per image: a new one prunes the oldest unused.',
  ),
  CAPSULE_BUILD_TIMEOUT_MS: set(
    'server',
    p.int(),
    '1200000',
    'The longest an image build may take, in ms (20 min; enforced by the host over the whole build).',
  ),
  CAPSULE_PAGE_PREFETCH: set(
    'server',
    p.onOff(),
    'on',
    'on: a launch from an image reads ahead the snapshot pages its validate step touched (recorded at build time).',
  ),
  CAPSULE_APP_READY_TIMEOUT_MS: set(
    'server',
    p.int(),
    '60000',
    "How long a launched image's app gets to accept connections on its port, in ms.",
  ),
  CAPSULE_BASE_DOMAIN: set(
    'network',
    p.text(),
    'localhost',
    'MicroVM endpoints answer at `http://{id}.{domain}:{port}` (and `{guestPort}-{id}.{domain}`).',
  ),
  CAPSULE_PUBLIC_URL: opt(
    'network',
    p.url(['http://', 'https://']),
    'the Host the client called',
    "The API's public URL, which the endpoints the AWS API returns are built on.",
  ),
  CAPSULE_AWS_ENDPOINT_FORM: set(
    'network',
    p.oneOf(['path', 'host'] as const),
    'path',
    "The AWS API's MicroVM endpoints: `path` = {public URL}/endpoints/{id} (fetchable anywhere), `host` = " +
      'http://{id}.{base domain}:{port} (needs that name to resolve).',
  ),
  CAPSULE_NET_POOL: set(
    'network',
    p.cidr(30),
    '10.200.0.0/16',
    'Where VM uplink /30s come from (NATed out of the host, which gets `ip_forward=1`).',
  ),
  CAPSULE_NET_POOL_SIZE: set(
    'network',
    p.int(0),
    '2',
    'Network namespaces kept ready for launches (0: made at launch).',
  ),
  CAPSULE_EGRESS_PRIVATE_ALLOW: set(
    'network',
    p.cidrList(),
    '',
    "Private IPv4 CIDRs (comma-separated) opened to every VM's egress; tenants cannot open private ranges.",
  ),
  CAPSULE_EGRESS_NAME_PORTS: set(
    'network',
    p.portList(16),
    '80,443',
    'Guest ports (comma-separated, up to 16; `none`: no port) where a flow admitted only by a domain rule ' +
      'must say a listed name (TLS SNI or HTTP Host).',
  ),
  CAPSULE_DNS_UPSTREAM: opt(
    'network',
    p.ipPort(),
    "the host's `/etc/resolv.conf`",
    "ip[:port] that guests' allowed names are resolved with.",
  ),
  CAPSULE_ENDPOINT_DIRECT: set(
    'network',
    p.onOff(),
    'on',
    "Endpoints reach guest ports through the VM's namespace when the app listens there; off: always the agent tunnel.",
  ),
  DATABASE_URL: opt(
    'storage',
    p.url(['postgres://', 'postgresql://']),
    'SQLite in `<data dir>/capsule.db`',
    'postgres://… to keep state in Postgres.',
  ),
  CAPSULE_BLOBS: opt(
    'storage',
    p.s3Location(),
    '`<data dir>/blobs`',
    'Where image zips, layers and snapshots are kept: s3://bucket[/prefix] (with the CAPSULE_S3_* settings).',
  ),
  CAPSULE_S3_ENDPOINT: opt(
    'storage',
    p.url(['http://', 'https://']),
    "AWS's endpoint for the region",
    'S3-compatible storage for `s3://` code URIs and blobs; S3 is configured when this or ' +
      'CAPSULE_S3_ACCESS_KEY_ID is set.',
  ),
  CAPSULE_S3_REGION: set('storage', p.text(), 'us-east-1', 'The S3 region.'),
  CAPSULE_S3_ACCESS_KEY_ID: opt('storage', p.text(), 'none', 'The S3 access key id.'),
  CAPSULE_S3_SECRET_ACCESS_KEY: opt('storage', p.text(), 'none', 'The S3 secret access key.'),
  CAPSULE_S3_FORCE_PATH_STYLE: set(
    'storage',
    p.onOff(),
    'on',
    'Path-style S3 URLs (bucket in the path, as MinIO and most S3-compatible stores want).',
  ),
  CAPSULE_S3_CODE_PREFIXES: set(
    'storage',
    p.s3PrefixList(),
    '',
    "The only places a tenant's `s3://` codeUri may name (comma-separated s3://bucket or " +
      "s3://bucket/prefix/); none: uploads only. Never Capsule's own blob prefix.",
  ),
  CAPSULE_DISK_RESERVE_MIB: set(
    'storage',
    p.int(0),
    String(DEFAULT_DISK_RESERVE.mib),
    'Free space kept on the data and cache filesystems, in MiB (the smaller of this and the percentage); ' +
      'under it launches, builds and suspends answer 507.',
  ),
  CAPSULE_DISK_RESERVE_PERCENT: set(
    'storage',
    p.int(0, 100),
    String(DEFAULT_DISK_RESERVE.percent),
    "Free space kept, as a percentage of the filesystem's size (the smaller of this and the MiB).",
  ),
  CAPSULE_QUOTA_RUNNING_MICROVMS: set('quotas', p.int(), '100', 'MicroVMs a tenant may run at once.'),
  CAPSULE_QUOTA_VCPUS: set('quotas', p.int(), '200', "vCPUs of a tenant's running MicroVMs."),
  CAPSULE_QUOTA_MEMORY_MIB: set('quotas', p.int(), '204800', "Guest memory of a tenant's running MicroVMs, in MiB."),
  CAPSULE_QUOTA_STORAGE_MIB: set(
    'quotas',
    p.int(),
    '102400',
    "Disk a tenant may hold (its VMs' disk overlays, suspended state, images' artifacts), in MiB.",
  ),
  CAPSULE_SYSTEM_VMS: set(
    'quotas',
    p.int(),
    '2',
    'Builder and snapshot VMs at once (never counted against a tenant; more wait their turn).',
  ),
  CAPSULE_SYSTEM_MEMORY_MIB: set(
    'quotas',
    p.int(),
    String(SYSTEM_MEMORY_MIB),
    'Guest memory of builder and snapshot VMs together, in MiB (room for a build of the largest shape and a ' +
      'snapshot beside it).',
  ),
  CAPSULE_LAUNCHES_PER_SECOND: set(
    'limits',
    p.int(),
    '10',
    'Launches and resumes a tenant may start per second, sustained (a token bucket; 429 `RATE_LIMITED` with ' +
      '`Retry-After`).',
  ),
  CAPSULE_LAUNCH_BURST: set('limits', p.int(), '20', 'Launches and resumes a tenant may start in one burst.'),
  CAPSULE_SESSIONS_PER_VM: set('limits', p.int(), '64', 'Exec and shell sessions open at once on one MicroVM.'),
  CAPSULE_SESSIONS_PER_TENANT: set(
    'limits',
    p.int(),
    '512',
    "Exec and shell sessions open at once on a tenant's MicroVMs.",
  ),
  CAPSULE_TUNNELS_PER_VM: set(
    'limits',
    p.int(),
    '512',
    'Endpoint connections (proxied TCP streams) open at once to one MicroVM.',
  ),
  CAPSULE_TUNNELS_PER_TENANT: set(
    'limits',
    p.int(),
    '4096',
    "Endpoint connections open at once to a tenant's MicroVMs.",
  ),
  CAPSULE_HTTP_HEADERS_TIMEOUT_MS: set(
    'limits',
    p.int(),
    '20000',
    "A request's whole headers must arrive within this, in ms (against slow clients).",
  ),
  CAPSULE_HTTP_REQUEST_TIMEOUT_MS: set(
    'limits',
    p.int(),
    '1800000',
    'A whole request, body included, must arrive within this, in ms (30 min).',
  ),
  CAPSULE_HTTP_MAX_CONNECTIONS: set('limits', p.int(), '16384', 'Connections the API server holds at once.'),
};

export type EnvName = keyof typeof ENV_VARS;
/** The parsed environment: a defaulted variable always has its value, an optional one may be undefined. */
export type EnvValues = {
  [K in EnvName]: (typeof ENV_VARS)[K] extends DefaultedVar<infer T>
    ? T
    : (typeof ENV_VARS)[K] extends OptionalVar<infer T>
      ? T | undefined
      : never;
};

/** One variable's value from `env` (unset or empty: its default), or what is wrong with it. */
function read(name: EnvName, env: NodeJS.ProcessEnv): { value: unknown } | { problem: string } {
  const entry: EnvVar = ENV_VARS[name];
  const raw = env[name] || ('default' in entry ? entry.default : undefined);
  if (raw === undefined) return { value: undefined };
  const parsed = entry.schema.safeParse(raw);
  if (parsed.success) return { value: parsed.data };
  return { problem: `${name}: ${parsed.error.issues.map((i) => i.message).join(', ')}` };
}

/**
 * Reads every variable of the table from `env`. Throws ConfigError naming each bad variable, its value
 * and what is accepted (`CAPSULE_ACCELERATOR: "kvmm" is not one of auto, kvm, tcg`), joined by "; ".
 */
export function parseEnv(env: NodeJS.ProcessEnv): EnvValues {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const name of Object.keys(ENV_VARS) as EnvName[]) {
    const result = read(name, env);
    if ('problem' in result) problems.push(result.problem);
    else values[name] = result.value;
  }
  if (problems.length) throw new ConfigError(problems.join('; '));
  return values as EnvValues;
}

/** One variable, read as parseEnv reads it (for a module that needs its setting before the config exists). */
export function readEnv<K extends EnvName>(name: K, env: NodeJS.ProcessEnv): EnvValues[K] {
  const result = read(name, env);
  if ('problem' in result) throw new ConfigError(result.problem);
  return result.value as EnvValues[K];
}
