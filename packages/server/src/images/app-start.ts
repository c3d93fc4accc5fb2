// Starting an image's app in its VM: run its start command, then wait until it is ready — its ready
// hook answers 200 or, without one, its port accepts connections — giving up after a timeout with the
// app's own output. Used by a launch that boots (lifecycle) and by the app-snapshot capture (images).
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { AgentClient } from '../vmm/agent-client.js';
import { withDeadline } from '../deadline.js';
import type { BuildPlan, HookName } from './build-plan.js';
import { asUser } from './builder.js';
import { callHook, hookTimeoutMs } from './hooks.js';

/** The app's output goes to this file in the guest. */
const APP_LOG = '/var/log/capsule-app.log';
const READY_POLL_MS = 250;
const APP_LOG_TAIL_DEADLINE_MS = 5000;
/** An app with neither a port nor declared hooks is taken as ready once nothing has answered for this long. */
const NO_SIGNAL_GRACE_MS = 10_000;

/** The end of the app's output (the file its start command writes to). */
export async function appLogTail(agent: AgentClient, maxBytes = 2000): Promise<string> {
  let text = '';
  const tail = agent.exec(
    { command: ['tail', '-c', String(maxBytes), APP_LOG] },
    { onStdout: (c) => void (text.length < maxBytes ? (text += c.toString('utf8')) : undefined) },
  ).result;
  await withDeadline(tail, APP_LOG_TAIL_DEADLINE_MS, () => new Error('no answer')).catch(() => undefined);
  return text.slice(-maxBytes);
}

/**
 * Ask a polled hook (ready, validate) once: `ok` on 200, `missing` when it is not served (or not enabled), else
 * why not yet (503, or no answer). Any other status is the app refusing: an error.
 */
async function askHook(agent: AgentClient, plan: BuildPlan, name: 'ready' | 'validate'): Promise<string> {
  const hook = await callHook(agent, plan, name).catch((err: Error) => ({
    kind: 'failed' as const,
    message: err.message,
  }));
  if (hook.kind === 'failed') return hook.message;
  if (hook.kind === 'missing') return 'missing';
  if (hook.status === 200) return 'ok';
  if (hook.status !== 503)
    throw new CapsuleError(
      ErrorCode.BOOT_FAILED,
      `the app's ${name} hook answered ${hook.status}: ${hook.body.slice(0, 1000)}`,
    );
  return `the ${name} hook answered 503 (not ready yet)`;
}

/** The image enabled this hook by name (AWS's ENABLED): it is then the only signal, waited for until its timeout. */
export const hookRequired = (plan: BuildPlan, name: HookName): boolean => plan.enabledHooks?.includes(name) ?? false;

/** The app is ready: its ready hook says 200, or (no hook) its port accepts a connection. */
async function waitReady(agent: AgentClient, plan: BuildPlan, timeoutMs: number): Promise<void> {
  const waitMs = hookRequired(plan, 'ready') ? hookTimeoutMs(plan, 'ready') : timeoutMs;
  const deadline = Date.now() + waitMs;
  const quietUntil = Date.now() + Math.min(NO_SIGNAL_GRACE_MS, waitMs);
  let last = 'nothing answered yet';
  while (Date.now() < deadline) {
    const hook = await askHook(agent, plan, 'ready');
    if (hook === 'ok') return;
    if (hook !== 'missing') last = hook;
    else if (hookRequired(plan, 'ready')) last = 'the ready hook is not served yet';
    else if (plan.port === null) {
      // no port: the hook is the only signal. An app that declared its hooks (capsule.json `hooks`) is
      // waited for until the timeout; otherwise give it a moment to come up before "started" has to do
      const hooksDeclared =
        plan.hookPort !== undefined || plan.hookTimeoutMs !== undefined || plan.hookStyle !== undefined;
      if (!hooksDeclared && Date.now() > quietUntil) return;
    } else {
      try {
        (await agent.openTunnel(plan.port, 5000)).destroy();
        return;
      } catch (err) {
        last = (err as Error).message;
      }
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  throw new CapsuleError(
    ErrorCode.BOOT_TIMEOUT,
    `the app was not ready within ${waitMs} ms (${last})\n--- app output (tail) ---\n${await appLogTail(agent)}`,
  );
}

/**
 * The validate hook, on a VM restored from the new snapshot: asked until it answers 200 (503: not yet) within its
 * timeout. Skipped when the app does not serve it, unless the image enabled it by name.
 */
export async function validateApp(agent: AgentClient, plan: BuildPlan): Promise<void> {
  const waitMs = hookTimeoutMs(plan, 'validate');
  const deadline = Date.now() + waitMs;
  let last = 'nothing answered yet';
  while (Date.now() < deadline) {
    const hook = await askHook(agent, plan, 'validate');
    if (hook === 'ok') return;
    if (hook === 'missing' && !hookRequired(plan, 'validate')) return;
    last = hook === 'missing' ? 'the validate hook is not served' : hook;
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  throw new CapsuleError(
    ErrorCode.BOOT_TIMEOUT,
    `the app did not validate within ${waitMs} ms (${last})\n--- app output (tail) ---\n${await appLogTail(agent)}`,
  );
}

/** Start the image's app in the background (as its user, in its directory) and wait until it is ready. */
export async function startApp(
  agent: AgentClient,
  plan: BuildPlan,
  env: Record<string, string>,
  readyTimeoutMs: number,
): Promise<void> {
  if (!plan.start) return;
  const argv = ['/bin/sh', '-c', `exec "$@" >>${APP_LOG} 2>&1`, 'capsule-app', ...asUser(plan.user, plan.start)];
  await agent.exec({ command: argv, env, cwd: plan.workdir, background: true }).result;
  await waitReady(agent, plan, readyTimeoutMs);
}
