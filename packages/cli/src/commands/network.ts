// --egress/--deny options into a policy; `capsule network set ID …` and `capsule network log ID`.
import type { NetworkPolicyInput } from '@capsule/sdk';
import { commaList, commaLists, integer, UsageError } from '../args.js';
import { connect } from '../client.js';
import { printResult } from '../format.js';
import type { CliCommand } from '../command.js';

export interface NetworkOptions {
  egress?: string;
  deny?: string[];
}

/** `--egress none|all|LIST` (LIST: domains, *.wildcards, IPv4 addresses, CIDRs) and `--deny LIST`. */
export function addNetworkOptions(command: CliCommand): CliCommand {
  return command
    .option('--egress <none|all|LIST>', 'what the MicroVM may reach (LIST: domains, *.wildcards, IPs, CIDRs)')
    .option('--deny <LIST>', 'addresses refused even when --egress allows them (repeatable)', commaLists);
}

export function policyFromOptions(options: NetworkOptions, fallback: 'none' | null): NetworkPolicyInput | undefined {
  const egress = options.egress ?? fallback;
  const deny = options.deny;
  if (egress === null) {
    if (deny) throw new UsageError('--deny needs --egress');
    return undefined;
  }
  const mode: NetworkPolicyInput =
    egress === 'none' || egress === 'all' ? { egress } : { egress: 'allowlist', allow: commaList(egress) };
  return { ...mode, ...(deny ? { deny } : {}) };
}

function describe(network: { egress: string; allow: string[]; deny: string[] }): string {
  const allowed = network.egress === 'allowlist' ? network.allow.join(',') : network.egress;
  return network.deny.length ? `${allowed} (deny ${network.deny.join(',')})` : allowed;
}

export function defineNetwork(program: CliCommand): void {
  const network = program
    .command('network')
    .description("a MicroVM's egress policy and its log")
    .usage('<command> [options]');
  addNetworkOptions(network.command('set'))
    .description('change the egress policy, in force when it returns (< 1 s), no restart')
    .usage('ID --egress none|all|LIST [--deny LIST] [--json]')
    .argument('<ID>', 'the MicroVM')
    .option('--json', 'print the policy as JSON')
    .handle<NetworkOptions & { json?: boolean }>(async ({ args: [id], options }) => {
      const policy = policyFromOptions(options, null);
      if (!policy) throw new UsageError('capsule network set needs --egress');
      const info = await (await connect().microvms.get(id)).network.update(policy);
      printResult(options.json, info.network, `${info.id} egress ${describe(info.network)}`);
      return 0;
    });
  network
    .command('log')
    .description('DNS queries and flows out, allowed or denied, and the rule')
    .usage('ID [--limit N] [--json]')
    .argument('<ID>', 'the MicroVM')
    .option('--limit <N>', 'at most N entries', integer('--limit'))
    .option('--json', 'print the entries as JSON')
    .handle<{ limit?: number; json?: boolean }>(async ({ args: [id], options }) => {
      const vm = await connect().microvms.get(id);
      const entries = await vm.network.log(options.limit !== undefined ? { limit: options.limit } : {});
      if (options.json) process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
      else
        for (const e of entries)
          process.stdout.write(
            `${e.time}  ${e.verdict.padEnd(5)}  ${e.protocol.padEnd(4)}  ${(e.name ?? '-').padEnd(28)}  ` +
              `${e.address || '-'}${e.port === null ? '' : `:${e.port}`}  ${e.rule}\n`,
          );
      return 0;
    });
}
