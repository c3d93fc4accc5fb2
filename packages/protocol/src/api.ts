// REST wire schemas (design.md section 2). The server validates every request with these and the SDK
// validates every response with the same ones.
import { z } from 'zod';
import { FileStat as FileStatSchema, SignalName } from './messages.js';
import { EgressMode, NetworkPolicy, ResolvedNetworkPolicy } from './network.js';
import { IMAGE_NAME, IMAGE_NAME_RULE } from './images.js';

/** MicroVM states (design.md section 1). */
export const MicroVMState = z.enum([
  'PENDING', //      record created, VM being launched
  'RUNNING', //      QEMU up, agent answering
  'SUSPENDING', //   snapshot being written
  'SUSPENDED', //    no process, state on disk
  'TERMINATING', //  being torn down
  'TERMINATED', //   gone; record kept for history
  'FAILED', //       gone with a reason (failureReason)
]);
export type MicroVMState = z.infer<typeof MicroVMState>;

export const MAX_DURATION_CAP_SECONDS = 28_800;

/** Metadata (label) keys: what `?metadata.KEY=` filters may name too. */
export const LABEL_KEY = /^[A-Za-z0-9_.-]{1,63}$/;
const Labels = z.record(z.string().regex(LABEL_KEY), z.string().max(256));
const EnvVars = z.record(
  z
    .string()
    .min(1)
    .max(256)
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid variable name'),
  z
    .string()
    .max(32 * 1024)
    .regex(/^[^\0]*$/),
);

/**
 * The one set of VM shape limits: the API, capsule.json, Dockerfile builds and snapshots all check these.
 * Every VM's root disk is 8 GiB (sparse; a runtime's filesystem).
 */
/** A VM's shape: what it is launched with, quotas count, and ready snapshots are kept per. */
export interface VmShape {
  vcpuCount: number;
  memoryMib: number;
}

/** The same shape: the same vCPUs and memory (whatever else either carries). */
export function sameShape(a: VmShape, b: VmShape): boolean {
  return a.vcpuCount === b.vcpuCount && a.memoryMib === b.memoryMib;
}

export const SHAPE_LIMITS = { minVcpus: 1, maxVcpus: 16, minMemoryMib: 128, maxMemoryMib: 16384 } as const;
export const VcpuCount = z.number().int().min(SHAPE_LIMITS.minVcpus).max(SHAPE_LIMITS.maxVcpus);
export const MemoryMib = z.number().int().min(SHAPE_LIMITS.minMemoryMib).max(SHAPE_LIMITS.maxMemoryMib);

export const IdlePolicy = z
  .object({
    maxIdleDurationSeconds: z.number().int().min(0).max(MAX_DURATION_CAP_SECONDS).optional(),
    suspendedDurationSeconds: z.number().int().min(0).optional(),
    autoResumeEnabled: z.boolean().optional(),
  })
  .strict();

/** The idle policy with defaults applied, as stored and returned. 0 means "never". */
export const ResolvedIdlePolicy = z.object({
  maxIdleDurationSeconds: z.number(),
  suspendedDurationSeconds: z.number(),
  autoResumeEnabled: z.boolean(),
});
export type ResolvedIdlePolicy = z.infer<typeof ResolvedIdlePolicy>;

export const RunMicroVMRequest = z
  .object({
    /** An image of the tenant's, or a built-in runtime. */
    imageName: z.string().regex(IMAGE_NAME, IMAGE_NAME_RULE),
    imageVersion: z.number().int().positive().optional(),
    vcpuCount: VcpuCount.optional(),
    memoryMib: MemoryMib.optional(),
    env: EnvVars.optional(),
    metadata: Labels.optional(),
    idlePolicy: IdlePolicy.optional(),
    maximumDurationSeconds: z.number().int().min(1).optional(),
    network: NetworkPolicy.optional(),
    runHookPayload: z
      .string()
      .max(64 * 1024)
      .optional(),
  })
  .strict();
export type RunMicroVMRequest = z.infer<typeof RunMicroVMRequest>;
/** What a client sends (defaults not yet applied). */
export type RunMicroVMInput = z.input<typeof RunMicroVMRequest>;

/** What a running MicroVM uses now, read from its cgroup and its disk overlay. */
export const MicroVMUsage = z
  .object({
    cpuSeconds: z.number(),
    memoryBytes: z.number(),
    memoryPeakBytes: z.number(),
    diskBytes: z.number(),
  })
  .meta({ id: 'MicroVMUsage' });
export type MicroVMUsage = z.infer<typeof MicroVMUsage>;

export const MicroVM = z
  .object({
    id: z.string(),
    /**
     * http://{id}.{baseDomain}:{port}: the MicroVM's HTTP/WebSocket endpoint (guest port by X-Capsule-Port, default
     * 8080).
     */
    endpoint: z.string(),
    state: MicroVMState,
    imageName: z.string(),
    imageVersion: z.number().nullable(),
    vcpuCount: z.number(),
    memoryMib: z.number(),
    metadata: Labels,
    /** The egress mode (network.egress), kept at the top level for clients of the first API. */
    egress: EgressMode,
    network: ResolvedNetworkPolicy,
    accelerator: z.enum(['kvm', 'tcg']).nullable(),
    launchedFrom: z.enum(['boot', 'snapshot', 'pool']).nullable(),
    kernelRelease: z.string().nullable(),
    failureReason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    startedAt: z.string().nullable(),
    terminatedAt: z.string().nullable(),
    maximumDurationSeconds: z.number(),
    idlePolicy: ResolvedIdlePolicy,
    lastActivityAt: z.string().nullable(),
    suspendedAt: z.string().nullable(),
    /**
     * Where a SUSPENDED VM's state is: only on its host, or also in the blob store every host shares (CAPSULE_BLOBS
     * s3://…), so any host can resume it; null unless SUSPENDED.
     */
    suspendedStateLocation: z.enum(['host', 'shared']).nullable(),
    /** The host that runs it, or ran it last (GET /v1/hosts); null for a record older than hosts. */
    hostId: z.string().nullable(),
    /** While RUNNING (jailed): CPU time, memory now and at peak, disk bytes allocated; else null. */
    usage: MicroVMUsage.nullable(),
  })
  .meta({ id: 'MicroVM' });
export type MicroVM = z.infer<typeof MicroVM>;

/** The states a MicroVM went through, oldest first; a launch, suspend or resume says how long it took. */
export const MicroVMHistory = z
  .object({
    entries: z.array(z.object({ state: MicroVMState, at: z.string(), durationMs: z.number().nullable() })),
  })
  .meta({ id: 'MicroVMHistory' });
export type MicroVMHistory = z.infer<typeof MicroVMHistory>;

export const MicroVMList = z.object({ microvms: z.array(MicroVM), nextToken: z.string().nullable() });
export type MicroVMList = z.infer<typeof MicroVMList>;

export const ExecRequest = z
  .object({
    command: z.union([
      z
        .array(
          z
            .string()
            .max(128 * 1024)
            .regex(/^[^\0]*$/, 'must not contain NUL'),
        )
        .min(1)
        .max(4096),
      z
        .string()
        .min(1)
        .max(128 * 1024),
    ]),
    cwd: z
      .string()
      .min(1)
      .max(4096)
      .regex(/^\/[^\0]*$/, 'must be an absolute path without NUL')
      .optional(),
    env: EnvVars.optional(),
    /** base64 */
    stdin: z
      .string()
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64')
      .optional(),
    timeoutMs: z
      .number()
      .int()
      .min(1)
      .max(MAX_DURATION_CAP_SECONDS * 1000)
      .optional(),
    background: z.boolean().optional(),
  })
  .strict();
export type ExecRequest = z.infer<typeof ExecRequest>;

/** One NDJSON line of an exec response stream. The last line is `exit` (or `error`, or `started` for background). */
export const ExecEvent = z.union([
  z.object({ stdout: z.string() }).strict(),
  z.object({ stderr: z.string() }).strict(),
  z.object({ pid: z.number() }).strict(),
  z
    .object({
      exitCode: z.number().nullable(),
      signal: SignalName.or(z.string()).nullable(),
      timedOut: z.boolean().optional(),
    })
    .strict(),
  z.object({ error: z.object({ code: z.string(), message: z.string() }) }).strict(),
]);
export type ExecEvent = z.infer<typeof ExecEvent>;

/** `details`: machine-readable facts about the failure (for QUOTA_EXCEEDED: quota, limit, used, requested). */
export const ErrorBody = z
  .object({
    error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
  })
  .meta({ id: 'ErrorBody' });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const Health = z.object({
  status: z.literal('ok'),
  accelerator: z.enum(['kvm', 'tcg']),
  acceleratorReason: z.string(),
  version: z.string(),
});
export type Health = z.infer<typeof Health>;

/** A built-in runtime: an image every tenant may launch by name. */
export const RuntimeInfo = z
  .object({ name: z.string(), kernelRelease: z.string(), nodeVersion: z.string(), builtAt: z.string() })
  .meta({ id: 'Runtime' });
export type RuntimeInfo = z.infer<typeof RuntimeInfo>;
export const RuntimeList = z.object({ runtimes: z.array(RuntimeInfo) });

export { FileStat } from './messages.js';
export const FileList = z.object({ entries: z.array(FileStatSchema) });
export type FileList = z.infer<typeof FileList>;

/** The longest an endpoint auth token may live. */
export const MAX_AUTH_TOKEN_TTL_SECONDS = 3600;
/** The guest port an endpoint request goes to when it does not say (X-Capsule-Port). */
export const DEFAULT_ENDPOINT_PORT = 8080;

const GuestPort = z.number().int().min(1).max(65535);
/** Inclusive. */
const PortRange = z
  .object({ start: GuestPort, end: GuestPort })
  .strict()
  .refine((r) => r.start <= r.end, 'start must not be above end');
export const CreateAuthTokenRequest = z
  .object({
    /** Default: [8080] when no ranges and not allPorts are asked for either. */
    allowedPorts: z.array(GuestPort).min(1).max(32).optional(),
    allowedPortRanges: z.array(PortRange).min(1).max(32).optional(),
    /** Every guest port (AWS's `allPorts`). */
    allPorts: z.boolean().optional(),
    ttlSeconds: z.number().int().min(1).max(MAX_AUTH_TOKEN_TTL_SECONDS).default(900),
  })
  .strict();
export type CreateAuthTokenRequest = z.input<typeof CreateAuthTokenRequest>;

/** Sent as `X-Capsule-Auth` to the MicroVM's endpoint. */
export const AuthToken = z.object({
  token: z.string(),
  expiresAt: z.string(),
  allowedPorts: z.array(z.number()),
  /** Present when the token opens ranges (all ports: 1-65535). */
  allowedPortRanges: z.array(z.object({ start: z.number(), end: z.number() })).optional(),
});
export type AuthToken = z.infer<typeof AuthToken>;
