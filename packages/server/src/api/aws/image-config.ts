// The AWS API's ImageConfig (CreateMicrovmImage, UpdateMicrovmImage): its schema, validated server-side because
// the SDK checks nothing, and what it means for a Capsule build. The base image is a runtime (a managed image's
// ARN); the zip's Dockerfile or capsule.json describes the app as for any Capsule image; environment variables,
// memory (and the vCPUs AWS pairs with it) and hooks given here override it. IAM roles, logging, CPU
// configurations, OS capabilities and network connectors are validated, kept and echoed, not enforced.
import { z } from 'zod';
import { SHAPE_LIMITS } from '@capsule/protocol';
import type { BuildPlan, HookName } from '../../images/build-plan.js';

const ROLE_ARN = /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/?[a-zA-Z_0-9+=,.@\-_/]+$/;
/** AWS pairs memory with vCPUs at 2 GiB each. */
const MIB_PER_VCPU = 2048;

export const Arn = z.string().min(1).max(2048).regex(/^\S+$/, 'must have no whitespace');
export const RoleArn = z
  .string()
  .max(2048)
  .regex(ROLE_ARN, 'must be an IAM role ARN (arn:aws:iam::123456789012:role/…)');
const HookState = z.enum(['ENABLED', 'DISABLED']);
const RuntimeHookSeconds = z.number().int().min(1).max(60);
const ImageHookSeconds = z.number().int().min(1).max(3600);

const Hooks = z
  .object({
    port: z.number().int().min(1).max(65_535).optional(),
    microvmHooks: z
      .object({
        run: HookState.optional(),
        runTimeoutInSeconds: RuntimeHookSeconds.optional(),
        resume: HookState.optional(),
        resumeTimeoutInSeconds: RuntimeHookSeconds.optional(),
        suspend: HookState.optional(),
        suspendTimeoutInSeconds: RuntimeHookSeconds.optional(),
        terminate: HookState.optional(),
        terminateTimeoutInSeconds: RuntimeHookSeconds.optional(),
      })
      .strict()
      .optional(),
    microvmImageHooks: z
      .object({
        ready: HookState.optional(),
        readyTimeoutInSeconds: ImageHookSeconds.optional(),
        validate: HookState.optional(),
        validateTimeoutInSeconds: ImageHookSeconds.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const Logging = z.union([
  z.object({ disabled: z.object({}).strict() }).strict(),
  z
    .object({
      cloudWatch: z
        .object({ logGroup: z.string().min(1).max(512).optional(), logStream: z.string().min(1).max(512).optional() })
        .strict(),
    })
    .strict(),
]);

/** Every ImageConfig member; Create adds name, tags and clientToken, Update clientToken. */
export const ImageConfig = z.object({
  baseImageArn: Arn,
  baseImageVersion: z.string().min(1).max(2048).regex(/^\S+$/).optional(),
  buildRoleArn: RoleArn,
  description: z.string().max(256).optional(),
  codeArtifact: z.object({ uri: z.string().regex(/^s3:\/\/[^/\s]+\/\S+$/, 'must be s3://bucket/key.zip') }).strict(),
  logging: Logging.optional(),
  egressNetworkConnectors: z.array(Arn).max(1).optional(),
  cpuConfigurations: z
    .array(z.object({ architecture: z.string().min(1).max(64) }).strict())
    .max(4)
    .optional(),
  resources: z
    .array(
      z
        .object({ minimumMemoryInMiB: z.number().int().min(SHAPE_LIMITS.minMemoryMib).max(SHAPE_LIMITS.maxMemoryMib) })
        .strict(),
    )
    .max(1)
    .optional(),
  additionalOsCapabilities: z
    .array(z.enum(['ALL']))
    .max(1)
    .optional(),
  hooks: Hooks.optional(),
  environmentVariables: z
    .record(z.string().min(1).max(256).regex(/^\S+$/, 'keys have no whitespace'), z.string().max(4096))
    .refine((env) => Object.keys(env).length <= 50, 'at most 50 entries')
    .optional(),
});
export type ImageConfig = z.infer<typeof ImageConfig>;

export const ClientToken = z.string().min(1).max(64).optional();
export const Tags = z
  .record(z.string().min(1).max(128), z.string().max(256))
  .refine((tags) => Object.keys(tags).length <= 50, 'at most 50 tags');

/** The runtime a base image ARN (or bare name) names: the text after `microvm-image:`, or the whole name. */
export function runtimeOfBase(baseImageArn: string): string {
  const at = baseImageArn.lastIndexOf(':');
  return baseImageArn.slice(at + 1);
}

const RUNTIME_HOOKS = ['run', 'resume', 'suspend', 'terminate'] as const;
const IMAGE_HOOKS = ['ready', 'validate'] as const;

/** Hooks at AWS's paths: only those ENABLED are called, each with its own timeout (AWS's defaults otherwise). */
function withHooks(plan: BuildPlan, hooks: ImageConfig['hooks']): BuildPlan {
  const enabled: HookName[] = [];
  const timeouts: Partial<Record<HookName, number>> = {};
  const runtime: Record<string, unknown> = hooks?.microvmHooks ?? {};
  const image: Record<string, unknown> = hooks?.microvmImageHooks ?? {};
  for (const [group, names] of [
    [runtime, RUNTIME_HOOKS],
    [image, IMAGE_HOOKS],
  ] as const) {
    for (const name of names) {
      if (group[name] === 'ENABLED') enabled.push(name);
      const seconds = group[`${name}TimeoutInSeconds`];
      if (typeof seconds === 'number') timeouts[name] = seconds * 1000;
    }
  }
  const { hookTimeoutMs: _unused, ...rest } = plan;
  return {
    ...rest,
    hookStyle: 'aws',
    hookPort: hooks?.port ?? plan.hookPort,
    enabledHooks: enabled,
    hookTimeoutsMs: timeouts,
  };
}

/** The build plan the zip described, with what the ImageConfig says over it. */
export function adjustPlan(config: ImageConfig): (plan: BuildPlan) => BuildPlan {
  return (plan) => {
    const memoryMib = config.resources?.[0]?.minimumMemoryInMiB;
    const shape =
      memoryMib === undefined
        ? {}
        : { memoryMib, vcpuCount: Math.min(SHAPE_LIMITS.maxVcpus, Math.max(1, Math.round(memoryMib / MIB_PER_VCPU))) };
    return withHooks({ ...plan, env: { ...plan.env, ...config.environmentVariables }, ...shape }, config.hooks);
  };
}
