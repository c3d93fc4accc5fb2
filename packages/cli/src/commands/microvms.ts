// run, ls, get, suspend, resume, terminate.
import type { MicroVMInfo, MicroVMState } from '@capsule/sdk';
import { durationSeconds, integer, keyValue, UsageError } from '../args.js';
import { connect } from '../client.js';
import type { CliCommand } from '../command.js';
import { microvmDetail, microvmTable, printResult } from '../format.js';
import { addExecOptions, type ExecOptions, streamExec } from './exec.js';
import { addNetworkOptions, type NetworkOptions, policyFromOptions } from './network.js';

interface RunOptions extends ExecOptions, NetworkOptions {
  vcpus?: number;
  memoryMib?: number;
  maxDuration?: number;
  idle?: number;
  /** false with --no-auto-resume. */
  autoResume: boolean;
  label?: Record<string, string>;
  rm?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function defineRun(program: CliCommand): void {
  const run = program
    .command('run')
    .description('launch a MicroVM from an image (with --rm: run one command in it, then terminate it)')
    .usage('IMAGE [options] [--rm -- CMD...]')
    .argument('<IMAGE>', 'the image (a runtime such as python, or a MicroVM Image name)')
    .option('--vcpus <N>', 'virtual CPUs', integer('--vcpus'))
    .option('--memory-mib <M>', 'memory in MiB', integer('--memory-mib'))
    .option('--max-duration <duration>', 'terminated after this long (8h)', durationSeconds('--max-duration'))
    .option('--idle <duration>', 'suspended after this long without activity (15m)', durationSeconds('--idle'))
    .option('--no-auto-resume', 'a request to the suspended MicroVM does not resume it')
    .option('--label <K=V>', 'a label (metadata; repeatable)', keyValue('--label'));
  addExecOptions(addNetworkOptions(run))
    .option('--json', 'print the MicroVM as JSON')
    .option('--quiet', "print only the MicroVM's id")
    .option('--rm', 'run the command after --, print its output, terminate; exit with its code')
    .takesTail()
    .handle<RunOptions>(async ({ args: [imageName], options, tail }) => {
      if (options.rm && tail.length === 0)
        throw new UsageError('--rm needs a command: capsule run IMAGE --rm -- CMD...');
      const vm = await connect().microvms.run({
        imageName,
        vcpuCount: options.vcpus,
        memoryMib: options.memoryMib,
        maximumDurationSeconds: options.maxDuration,
        env: options.env,
        metadata: options.label,
        network: policyFromOptions(options, 'none'),
        idlePolicy: {
          maxIdleDurationSeconds: options.idle,
          autoResumeEnabled: options.autoResume ? undefined : false,
        },
      });
      if (!options.rm) {
        if (options.quiet) process.stdout.write(vm.id + '\n');
        else printResult(options.json, vm.info, microvmTable([vm.info]));
        return 0;
      }
      try {
        return await streamExec(vm, tail, options);
      } finally {
        await vm
          .terminate()
          .catch((err) => process.stderr.write(`capsule: could not terminate ${vm.id}: ${(err as Error).message}\n`));
      }
    });
}

export function defineList(program: CliCommand): void {
  program
    .command('ls')
    .alias('list')
    .description('list MicroVMs')
    .usage('[--state S] [--label K=V] [--image NAME] [--json]')
    .option('--state <S>', 'only MicroVMs in this state (running, suspended, …)')
    .option('--label <K=V>', 'only MicroVMs with this label (repeatable)', keyValue('--label'))
    .option('--image <NAME>', 'only MicroVMs of this image')
    .option('--json', 'print the MicroVMs as JSON')
    .handle<{ state?: string; label?: Record<string, string>; image?: string; json?: boolean }>(async ({ options }) => {
      const capsule = connect();
      const all: MicroVMInfo[] = [];
      let nextToken: string | undefined;
      do {
        const page = await capsule.microvms.list({
          state: options.state?.toUpperCase() as MicroVMState | undefined,
          imageName: options.image,
          metadata: options.label,
          nextToken,
        });
        all.push(...page.microvms.map((vm) => vm.info));
        nextToken = page.nextToken ?? undefined;
      } while (nextToken);
      printResult(options.json, all, all.length ? microvmTable(all) : 'no MicroVMs');
      return 0;
    });
}

const ACTIONS = {
  get: 'show one MicroVM',
  suspend: 'save to disk and stop',
  resume: 'bring a suspended MicroVM back exactly as it was',
  terminate: 'stop and discard a MicroVM',
} as const;

export function defineVmAction(program: CliCommand, action: keyof typeof ACTIONS): void {
  const command = program
    .command(action)
    .description(ACTIONS[action])
    .usage('ID [--json]')
    .argument('<ID>', 'the MicroVM')
    .option('--json', 'print the MicroVM as JSON');
  if (action === 'terminate') command.alias('rm');
  command.handle<{ json?: boolean }>(async ({ args: [id], options }) => {
    const vm = await connect().microvms.get(id);
    const info = action === 'get' ? vm.info : await vm[action]();
    printResult(options.json, info, action === 'get' ? microvmDetail(info) : `${info.id} ${info.state}`);
    return 0;
  });
}
