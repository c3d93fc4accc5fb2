// What a MicroVM boots from: a runtime (built-in image) or a built version of a tenant's image (a
// frozen layer over its runtime), and, for an image, starting its app once the VM runs.
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { BuildPlan } from '../images/build-plan.js';
import { asUser } from '../images/builder.js';
import type { ImageService, LaunchableImage } from '../images/image-service.js';
import type { Runtime, RuntimeRegistry } from '../runtimes/registry.js';
import type { AgentClient } from '../vmm/agent-client.js';

export interface LaunchSource {
  runtime: Runtime;
  image: LaunchableImage | null;
}

/** The app's output goes to this file in the guest (`capsule logs` shows the console). */
export const APP_LOG = '/var/log/capsule-app.log';

export async function resolveSource(runtimes: RuntimeRegistry, images: ImageService | null, tenantId: string, imageName: string, imageVersion?: number): Promise<LaunchSource> {
  if (imageVersion === undefined && runtimes.list().some((r) => r.name === imageName)) return { runtime: runtimes.get(imageName), image: null };
  if (!images) throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `no runtime or image named ${imageName}`);
  const image = await images.launchable(tenantId, imageName, imageVersion);
  return { runtime: runtimes.get(image.record.runtime), image };
}

/** Start the image's app in the background (as its user, in its directory), then wait for its port. */
export async function startApp(agent: AgentClient, plan: BuildPlan, env: Record<string, string>, readyTimeoutMs: number): Promise<void> {
  if (!plan.start) return;
  const argv = ['/bin/sh', '-c', `exec "$@" >>${APP_LOG} 2>&1`, 'capsule-app', ...asUser(plan.user, plan.start)];
  await agent.exec({ command: argv, env, cwd: plan.workdir, background: true }).result;
  if (plan.port === null) return;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    try {
      (await agent.openTunnel(plan.port, 5000)).destroy();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new CapsuleError(ErrorCode.BOOT_TIMEOUT, `the app did not accept connections on port ${plan.port} within ${readyTimeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
