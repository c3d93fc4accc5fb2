// capsule.json: the no-Dockerfile way to describe an image — runtime, build commands, start command,
// port, env, and the MicroVM shape it wants.
import { z } from 'zod';
import { formatIssues, MemoryMib, VcpuCount } from '@capsule/protocol';
import { BuildSpecError, DEFAULT_USER, DEFAULT_WORKDIR, HOOK_NAMES, type BuildPlan } from './build-plan.js';

const FILE = 'capsule.json';
const BuildCommands = z.array(z.string().min(1)).max(200);

const CapsuleJson = z
  .object({
    /** Required unless the image names its base elsewhere (the AWS API's baseImageArn, which then wins). */
    runtime: z.string().min(1).optional(),
    /**
     * Shell commands run in order in the app directory at build time; or {commands, egress}, where
     * egress `none` builds with no network at all (default `all`: the public internet, never the host).
     */
    build: z
      .union([
        BuildCommands,
        z.object({ commands: BuildCommands.default([]), egress: z.enum(['none', 'all']).optional() }).strict(),
      ])
      .default([]),
    /** How the app starts: a shell command or an argv. */
    start: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    memoryMib: MemoryMib.optional(),
    vcpuCount: VcpuCount.optional(),
    hooks: z
      .object({
        port: z.number().int().min(1).max(65535).optional(),
        timeoutSeconds: z.number().int().min(1).max(60).optional(),
        /** `aws`: called at AWS's paths (/aws/lambda-microvms/runtime/v1/…) with AWS's default timeouts. */
        style: z.enum(['capsule', 'aws']).optional(),
        /** Only these are called, and each is then required (validate runs only when listed here). */
        enabled: z.array(z.enum(HOOK_NAMES)).max(HOOK_NAMES.length).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export function parseCapsuleJson(text: string, runtimes: readonly string[], baseRuntime?: string): BuildPlan {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BuildSpecError(FILE, null, `not valid JSON: ${(err as Error).message}`);
  }
  const parsed = CapsuleJson.safeParse(raw);
  if (!parsed.success) throw new BuildSpecError(FILE, null, formatIssues(parsed.error, 'file'));
  const spec = parsed.data;
  const runtime = baseRuntime ?? spec.runtime;
  if (runtime === undefined) throw new BuildSpecError(FILE, null, 'runtime: required');
  if (!runtimes.includes(runtime))
    throw new BuildSpecError(FILE, null, `runtime: unknown runtime "${runtime}" (available: ${runtimes.join(', ')})`);
  const context = { env: spec.env, workdir: DEFAULT_WORKDIR, user: DEFAULT_USER };
  const build = Array.isArray(spec.build) ? { commands: spec.build, egress: undefined } : spec.build;
  return {
    runtime,
    // the whole zip is the app: copied to the app directory first, then built there
    steps: [
      { kind: 'copy', sources: ['.'], dest: DEFAULT_WORKDIR + '/', line: 0, ...context },
      ...build.commands.map((cmd, i) => ({
        kind: 'run' as const,
        argv: ['/bin/sh', '-c', cmd],
        line: i + 1,
        ...context,
      })),
    ],
    env: spec.env,
    workdir: DEFAULT_WORKDIR,
    user: DEFAULT_USER,
    start:
      spec.start === undefined ? null : typeof spec.start === 'string' ? ['/bin/sh', '-c', spec.start] : spec.start,
    port: spec.port ?? null,
    memoryMib: spec.memoryMib ?? null,
    vcpuCount: spec.vcpuCount ?? null,
    hookPort: spec.hooks?.port,
    hookTimeoutMs: spec.hooks?.timeoutSeconds === undefined ? undefined : spec.hooks.timeoutSeconds * 1000,
    ...(spec.hooks?.style ? { hookStyle: spec.hooks.style } : {}),
    ...(spec.hooks?.enabled ? { enabledHooks: spec.hooks.enabled } : {}),
    ...(build.egress ? { buildEgress: build.egress } : {}),
  };
}
