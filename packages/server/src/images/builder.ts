// Build one image version inside a builder MicroVM of its runtime: boot it with egress (so RUN can
// reach Debian's mirror), copy the zip's files in, run the steps with the environment, directory and
// user of their line, then stop the VM: its disk overlay is the image's frozen layer. A failing step
// ends the build with the step and the tail of its output; the builder VM never outlives the build.
import fs from 'node:fs';
import path from 'node:path/posix';
import type { VmNetworks } from '../network/vm-networks.js';
import { Machine, hostLaunchOptions } from '../vmm/machine.js';
import type { VmJail } from '../jail/jailer.js';
import { chownNoFollow } from '../jail/vm-files.js';
import type { AgentClient } from '../vmm/agent-client.js';
import type { Accelerator } from '../vmm/qemu-args.js';
import type { CapsuleConfig } from '../config.js';
import type { Runtime } from '../runtimes/registry.js';
import { fsyncPath } from '../durable.js';
import { withDeadline } from '../deadline.js';
import type { BuildPlan, BuildStep } from './build-plan.js';
import type { AppZip, ZipEntry } from './zip.js';

const OUTPUT_TAIL_BYTES = 4096;
const BUILDER_MEMORY_MIB = 1024;

/** The builder VM's memory: the app's own, and never under what package installs need. */
export const builderMemoryMib = (plan: Pick<BuildPlan, 'memoryMib'>): number =>
  Math.max(plan.memoryMib ?? 0, BUILDER_MEMORY_MIB);
/** Past the build's deadline, the guest's own step timeout has this long to report before the host cuts the VM. */
const BUILD_DEADLINE_GRACE_MS = 5000;

export class BuildFailure extends Error {
  constructor(
    /** e.g. "Dockerfile line 4: RUN pip install …" */
    readonly step: string,
    message: string,
    readonly outputTail = '',
  ) {
    super(`${step}: ${message}`);
    this.name = 'BuildFailure';
  }
}

export interface BuildOptions {
  config: CapsuleConfig;
  runtime: Runtime;
  accelerator: Accelerator;
  /** The builder VM's jail (the caller releases it); null only unjailed. */
  jail: VmJail | null;
  zip: AppZip;
  plan: BuildPlan;
  /** A short private directory: the builder VM's sockets and the layer go here. */
  workDir: string;
  /** Every line of build output, as it comes. */
  log: (text: string) => void;
  timeoutMs: number;
  /**
   * Builder VMs get a namespace of their own with the plan's build egress (public internet by default, never the host).
   */
  networks: VmNetworks | null;
}

function describe(step: BuildStep): string {
  const what =
    step.kind === 'run'
      ? `RUN ${step.argv.slice(step.argv[0] === '/bin/sh' ? 2 : 0).join(' ')}`
      : `COPY ${step.sources.join(' ')} ${step.dest}`;
  return `${step.line > 0 ? `line ${step.line}: ` : ''}${what}`.slice(0, 200);
}

/** Zip entries a COPY source names, each with where it lands (Docker's rules for files and directories). */
function copyTargets(entries: ZipEntry[], source: string, dest: string): Array<{ entry: ZipEntry; target: string }> {
  if (source === '.') return entries.map((entry) => ({ entry, target: path.join(dest, entry.path) }));
  const exact = entries.find((e) => e.path === source);
  if (exact && exact.type !== 'dir')
    return [{ entry: exact, target: dest.endsWith('/') ? path.join(dest, path.basename(source)) : dest }];
  const inside = entries.filter((e) => e.path.startsWith(source + '/'));
  if (!exact && inside.length === 0) return [];
  return inside.map((entry) => ({ entry, target: path.join(dest, entry.path.slice(source.length + 1)) }));
}

async function copyStep(agent: AgentClient, zip: AppZip, step: Extract<BuildStep, { kind: 'copy' }>): Promise<void> {
  for (const source of step.sources) {
    const targets = copyTargets(zip.entries, source, step.dest);
    if (targets.length === 0 && !(source === '.' && zip.entries.length === 0))
      throw new BuildFailure(describe(step), `${source} is not in the zip`);
    await agent.mkdir(step.dest.endsWith('/') ? step.dest : path.dirname(step.dest));
    for (const { entry, target } of targets) {
      if (entry.type === 'dir') await agent.mkdir(target);
      else if (entry.type === 'symlink') {
        await agent.mkdir(path.dirname(target));
        const link = await agent.exec({
          command: ['ln', '-sfn', (await zip.read(entry.path)).toString('utf8'), target],
        }).result;
        if (link.exitCode !== 0) throw new BuildFailure(describe(step), `could not create the symlink ${target}`);
      } else {
        await agent.mkdir(path.dirname(target));
        await agent.writeFile(target, await zip.stream(entry.path), { mode: entry.mode });
      }
    }
  }
}

/** argv run as `user` (a name, or uid[:gid]); root runs it directly. */
export function asUser(user: string, argv: string[]): string[] {
  if (user === 'root' || user === '0' || user === '0:0') return argv;
  const numeric = /^(\d+)(?::(\d+))?$/.exec(user);
  if (numeric)
    return ['setpriv', `--reuid=${numeric[1]}`, `--regid=${numeric[2] ?? numeric[1]}`, '--clear-groups', '--', ...argv];
  const [name, group] = user.split(':');
  return ['runuser', '-u', name, ...(group ? ['-g', group] : []), '--', ...argv];
}

async function runStep(
  agent: AgentClient,
  step: Extract<BuildStep, { kind: 'run' }>,
  log: (text: string) => void,
  timeoutMs: number,
): Promise<void> {
  await agent.mkdir(step.workdir);
  let tail = '';
  const output = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    log(text);
    tail = (tail + text).slice(-OUTPUT_TAIL_BYTES);
  };
  const result = await agent.exec(
    { command: asUser(step.user, step.argv), env: step.env, cwd: step.workdir, timeoutMs },
    { onStdout: output, onStderr: output, deadlineMs: timeoutMs + BUILD_DEADLINE_GRACE_MS },
  ).result;
  if (result.timedOut) throw new BuildFailure(describe(step), `timed out after ${timeoutMs} ms`, tail);
  if (result.exitCode !== 0)
    throw new BuildFailure(describe(step), `exited with ${result.signal ?? `code ${result.exitCode}`}`, tail);
}

async function runSteps(
  opts: BuildOptions,
  machine: Machine,
  deadline: number,
  progress: { step: string },
): Promise<void> {
  for (const step of opts.plan.steps) {
    progress.step = describe(step);
    const left = deadline - Date.now();
    if (left <= 0) throw new BuildFailure(describe(step), `the build ran out of time (${opts.timeoutMs} ms)`);
    opts.log(`==> ${describe(step)}\n`);
    if (step.kind === 'copy') await copyStep(machine.agent, opts.zip, step);
    else await runStep(machine.agent, step, opts.log, left);
  }
  // the layer must hold everything the steps wrote before QEMU goes
  progress.step = 'sync';
  await machine.agent.exec({ command: ['sync'] }).result;
}

/** Run the build; resolves with the path of the frozen layer (a qcow2 over the runtime's rootfs). */
export async function buildLayer(opts: BuildOptions): Promise<string> {
  const layer = path.join(opts.workDir, 'layer.qcow2');
  const deadline = Date.now() + opts.timeoutMs;
  const netId = `build-${path.basename(opts.workDir)}`;
  const network = opts.networks
    ? await opts.networks.attach(
        netId,
        { egress: opts.plan.buildEgress ?? 'all', allow: [], deny: [] },
        { logEgress: false },
      )
    : null;
  try {
    return await buildIn(opts, layer, deadline, network?.netns);
  } finally {
    await opts.networks?.release(netId, null);
  }
}

async function buildIn(
  opts: BuildOptions,
  layer: string,
  deadline: number,
  netns: string | undefined,
): Promise<string> {
  const machine = await Machine.launch({
    ...hostLaunchOptions(opts.config, opts.runtime),
    vmDir: path.join(opts.workDir, 'vm'),
    overlayPath: layer,
    vcpuCount: opts.plan.vcpuCount ?? 1,
    memoryMib: builderMemoryMib(opts.plan),
    accelerator: opts.accelerator,
    netns, // build steps may fetch packages; the MicroVMs of the image default to egress none
    hostname: 'capsule-build',
    jail: opts.jail,
  });
  try {
    // the guest runs the tenant's commands as root and may ignore every timeout it is given: the host's
    // own timer bounds the whole build, and stopping the machine (below) cuts whatever step was running
    const progress = { step: 'the build' };
    const steps = runSteps(opts, machine, deadline, progress);
    await withDeadline(
      steps,
      deadline - Date.now() + BUILD_DEADLINE_GRACE_MS,
      () =>
        new BuildFailure(
          progress.step,
          `the build ran out of time (${opts.timeoutMs} ms); the guest did not stop the step`,
        ),
    );
  } finally {
    await machine.stop();
  }
  fsyncPath(layer);
  // frozen: root's and read-only (the builder's uid wrote it); VMs of the image see it read-only
  chownNoFollow(layer, 0, 0);
  fs.chmodSync(layer, 0o444);
  return layer;
}
