// What an image build does, whichever file described it (a Dockerfile subset or capsule.json): the
// runtime it starts from, the steps in order, and how the app starts and where it listens.

export const HOOK_NAMES = ['ready', 'validate', 'run', 'suspend', 'resume', 'terminate'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

interface StepContext {
  /** 1-based line of the Dockerfile (or the index of the capsule.json build command). */
  line: number;
  env: Record<string, string>;
  workdir: string;
  user: string;
}

export type BuildStep =
  | (StepContext & { kind: 'run'; argv: string[] })
  /** Copy `sources` (paths inside the zip, relative, no `..`) to `dest` in the image. */
  | (StepContext & { kind: 'copy'; sources: string[]; dest: string });

export interface BuildPlan {
  runtime: string;
  steps: BuildStep[];
  /** The app's environment, working directory and user at start. */
  env: Record<string, string>;
  workdir: string;
  user: string;
  /** The start command (ENTRYPOINT + CMD, or capsule.json `start`); null: the image only has files. */
  start: string[] | null;
  /** The port the app serves (readiness check and default endpoint port). */
  port: number | null;
  memoryMib: number | null;
  vcpuCount: number | null;
  /** Where the app serves its lifecycle hooks (default 9000) and how long each may take (default 10 s). */
  hookPort?: number;
  hookTimeoutMs?: number;
  /** `aws`: hooks at AWS's paths (`/aws/lambda-microvms/runtime/v1/{name}`) instead of `/capsule/v1/{name}`. */
  hookStyle?: 'capsule' | 'aws';
  /** Only these hooks are called (the AWS API's ENABLED flags); absent: every one, a 404 skipping it. */
  enabledHooks?: HookName[];
  /** Per-hook timeouts over hookTimeoutMs (ready and validate: how long to keep asking while they answer 503). */
  hookTimeoutsMs?: Partial<Record<HookName, number>>;
  /** The builder VM's egress: the public internet (default, never the host) or none. */
  buildEgress?: 'none' | 'all';
}

/** A description the build cannot follow: names the line (or field) and what is wrong. */
export class BuildSpecError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    message: string,
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${message}`);
    this.name = 'BuildSpecError';
  }
}

export const DEFAULT_WORKDIR = '/app';
export const DEFAULT_USER = 'root';
