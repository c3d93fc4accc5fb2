// Lifecycle hooks: if the app serves them on its hook port (default 9000), Capsule calls
// POST /capsule/v1/{ready,run,suspend,resume,terminate}. A hook the app does not serve (nothing
// listening, or 404) is skipped; `ready` answering 503 means "not yet".
import type { Logger } from '../log.js';
import type { AgentClient } from '../vmm/agent-client.js';
import type { BuildPlan } from './build-plan.js';
import { guestRequest } from './guest-http.js';

const DEFAULT_HOOK_PORT = 9000;
const DEFAULT_HOOK_TIMEOUT_MS = 10_000;

export type HookName = 'ready' | 'run' | 'suspend' | 'resume' | 'terminate';
export type HookOutcome = { kind: 'missing' } | { kind: 'answered'; status: number; body: string };

const hookPort = (plan: BuildPlan): number => plan.hookPort ?? DEFAULT_HOOK_PORT;
const hookTimeoutMs = (plan: BuildPlan): number => plan.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;

/** One hook call through the agent tunnel. Rejects on a timeout or a broken answer. */
export async function callHook(
  agent: AgentClient,
  plan: BuildPlan,
  name: HookName,
  payload = '',
): Promise<HookOutcome> {
  const answer = await guestRequest(agent, hookPort(plan), 'POST', `/capsule/v1/${name}`, payload, hookTimeoutMs(plan));
  return !answer || answer.status === 404 ? { kind: 'missing' } : { kind: 'answered', ...answer };
}

/** run / suspend / resume / terminate: called, logged if they fail, never fatal. */
export async function notifyHook(
  agent: AgentClient,
  plan: BuildPlan,
  name: Exclude<HookName, 'ready'>,
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
