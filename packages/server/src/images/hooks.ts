// Lifecycle hooks: if the app serves them on its hook port (default 9000), Capsule calls
// POST /capsule/v1/{ready,validate,run,suspend,resume,terminate}, or AWS's paths
// (/aws/lambda-microvms/runtime/v1/…) for an image that asks for them. A hook the app does not serve (nothing
// listening, or 404), or one its image did not enable, is skipped; `ready` and `validate` answering 503 mean
// "not yet".
import type { Logger } from '../log.js';
import type { AgentClient } from '../vmm/agent-client.js';
import type { BuildPlan, HookName } from './build-plan.js';
import { guestRequest } from './guest-http.js';

const DEFAULT_HOOK_PORT = 9000;
const DEFAULT_HOOK_TIMEOUT_MS = 10_000;
/** AWS's defaults: 1 s for a MicroVM's hooks, 30 s for ready and validate. */
const AWS_HOOK_TIMEOUT_MS = 1000;
const AWS_IMAGE_HOOK_TIMEOUT_MS = 30_000;
/** One ask of a hook that may answer 503 for a while (ready, validate) waits at most this long. */
const POLLED_REQUEST_MS = 10_000;

export type HookOutcome = { kind: 'missing' } | { kind: 'answered'; status: number; body: string };

const hookPort = (plan: BuildPlan): number => plan.hookPort ?? DEFAULT_HOOK_PORT;

const isPolledHook = (name: HookName): boolean => name === 'ready' || name === 'validate';

/** How long a hook may take (ready and validate: how long to keep asking). */
export function hookTimeoutMs(plan: BuildPlan, name: HookName): number {
  const own = plan.hookTimeoutsMs?.[name];
  if (own !== undefined) return own;
  if (plan.hookTimeoutMs !== undefined) return plan.hookTimeoutMs;
  if (plan.hookStyle !== 'aws') return DEFAULT_HOOK_TIMEOUT_MS;
  return isPolledHook(name) ? AWS_IMAGE_HOOK_TIMEOUT_MS : AWS_HOOK_TIMEOUT_MS;
}

function hookEnabled(plan: BuildPlan, name: HookName): boolean {
  return plan.enabledHooks === undefined || plan.enabledHooks.includes(name);
}

function hookPath(plan: BuildPlan, name: HookName): string {
  return plan.hookStyle === 'aws' ? `/aws/lambda-microvms/runtime/v1/${name}` : `/capsule/v1/${name}`;
}

/** One hook call through the agent tunnel. Rejects on a timeout or a broken answer. */
export async function callHook(
  agent: AgentClient,
  plan: BuildPlan,
  name: HookName,
  payload = '',
): Promise<HookOutcome> {
  if (!hookEnabled(plan, name)) return { kind: 'missing' };
  const timeoutMs = isPolledHook(name)
    ? Math.min(POLLED_REQUEST_MS, hookTimeoutMs(plan, name))
    : hookTimeoutMs(plan, name);
  const answer = await guestRequest(agent, hookPort(plan), 'POST', hookPath(plan, name), payload, timeoutMs);
  return !answer || answer.status === 404 ? { kind: 'missing' } : { kind: 'answered', ...answer };
}

/** run / suspend / resume / terminate: called, logged if they fail, never fatal. */
export async function notifyHook(
  agent: AgentClient,
  plan: BuildPlan,
  name: Exclude<HookName, 'ready' | 'validate'>,
  log: Logger,
  microvmId: string,
  payload?: string,
): Promise<void> {
  try {
    const outcome = await callHook(agent, plan, name, payload);
    if (outcome.kind === 'answered' && (outcome.status < 200 || outcome.status > 299))
      log.warn(`the ${name} hook failed`, { id: microvmId, status: outcome.status, body: outcome.body.slice(0, 500) });
  } catch (err) {
    log.warn(`the ${name} hook failed`, { id: microvmId, error: (err as Error).message });
  }
}
