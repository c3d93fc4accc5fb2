// run, ls, get, suspend, resume, terminate.
import type { Capsule, MicroVMInfo, MicroVMState } from '@capsule/sdk';
import { flag, has, keyValues, parseArgs, parseDurationSeconds, parseInteger, UsageError } from '../args.js';
import { microvmDetail, microvmTable } from '../format.js';
import { EXEC_FLAGS, streamExec } from './exec.js';
import { NETWORK_FLAGS, policyFromFlags } from './network.js';

function print(json: boolean, value: unknown, human: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human + '\n');
}

export async function runCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, {
    values: ['vcpus', 'memory-mib', 'max-duration', 'idle', ...NETWORK_FLAGS, 'env', 'label', ...EXEC_FLAGS.values],
    booleans: ['rm', 'json', 'quiet', 'no-auto-resume', ...EXEC_FLAGS.booleans],
  });
  const [imageName] = parsed.positionals;
  if (!imageName || parsed.positionals.length > 1)
    throw new UsageError('usage: capsule run IMAGE [options] [--rm -- CMD...]');
  const maxDuration = flag(parsed, 'max-duration');
  const idle = flag(parsed, 'idle');
  if (has(parsed, 'rm') && parsed.rest.length === 0)
    throw new UsageError('--rm needs a command: capsule run IMAGE --rm -- CMD...');
  const vm = await capsule.microvms.run({
    imageName,
    vcpuCount: parseInteger(flag(parsed, 'vcpus'), '--vcpus'),
    memoryMib: parseInteger(flag(parsed, 'memory-mib'), '--memory-mib'),
    maximumDurationSeconds: maxDuration ? parseDurationSeconds(maxDuration, '--max-duration') : undefined,
    env: keyValues(parsed, 'env'),
    metadata: keyValues(parsed, 'label'),
    network: policyFromFlags(parsed, 'none'),
    idlePolicy: {
      maxIdleDurationSeconds: idle ? parseDurationSeconds(idle, '--idle') : undefined,
      autoResumeEnabled: has(parsed, 'no-auto-resume') ? false : undefined,
    },
  });
  if (!has(parsed, 'rm')) {
    if (has(parsed, 'quiet')) process.stdout.write(vm.id + '\n');
    else print(has(parsed, 'json'), vm.info, microvmTable([vm.info]));
    return 0;
  }
  try {
    return await streamExec(vm, parsed.rest, parsed);
  } finally {
    await vm
      .terminate()
      .catch((err) => process.stderr.write(`capsule: could not terminate ${vm.id}: ${(err as Error).message}\n`));
  }
}

export async function listCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, { values: ['state', 'label', 'image'], booleans: ['json'] });
  const all: MicroVMInfo[] = [];
  let nextToken: string | undefined;
  do {
    const page = await capsule.microvms.list({
      state: flag(parsed, 'state')?.toUpperCase() as MicroVMState | undefined,
      imageName: flag(parsed, 'image'),
      metadata: keyValues(parsed, 'label'),
      nextToken,
    });
    all.push(...page.microvms.map((vm) => vm.info));
    nextToken = page.nextToken ?? undefined;
  } while (nextToken);
  print(has(parsed, 'json'), all, all.length ? microvmTable(all) : 'no MicroVMs');
  return 0;
}

export async function getCommand(
  capsule: Capsule,
  argv: string[],
  action: 'get' | 'terminate' | 'suspend' | 'resume',
): Promise<number> {
  const parsed = parseArgs(argv, { values: [], booleans: ['json'] });
  const [id] = parsed.positionals;
  if (!id || parsed.positionals.length > 1) throw new UsageError(`usage: capsule ${action} ID`);
  const vm = await capsule.microvms.get(id);
  const info = action === 'get' ? vm.info : await vm[action]();
  print(has(parsed, 'json'), info, action === 'get' ? microvmDetail(info) : `${info.id} ${info.state}`);
  return 0;
}
