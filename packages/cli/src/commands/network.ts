// --egress/--deny flags into a policy; `capsule network set ID …` and `capsule network log ID`.
import type { Capsule, NetworkPolicyInput } from '@capsule/sdk';
import { flag, has, parseArgs, UsageError, type Parsed } from '../args.js';

export const NETWORK_FLAGS = ['egress', 'deny'];

const list = (value: string): string[] =>
  value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);

/** `--egress none|all|LIST` (LIST: domains, *.wildcards, IPv4 addresses, CIDRs) and `--deny LIST`. */
export function policyFromFlags(parsed: Parsed, fallback: 'none' | null): NetworkPolicyInput | undefined {
  const egress = flag(parsed, 'egress') ?? fallback;
  const deny = parsed.flags.get('deny')?.flatMap(list);
  if (egress === null) {
    if (deny) throw new UsageError('--deny needs --egress');
    return undefined;
  }
  const mode: NetworkPolicyInput =
    egress === 'none' || egress === 'all' ? { egress } : { egress: 'allowlist', allow: list(egress) };
  return { ...mode, ...(deny ? { deny } : {}) };
}

export async function networkCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const parsed = parseArgs(rest, { values: NETWORK_FLAGS.concat(['limit']), booleans: ['json'] });
  const [id] = parsed.positionals;
  if ((sub !== 'set' && sub !== 'log') || !id || parsed.positionals.length > 1) {
    throw new UsageError(
      'usage: capsule network set ID --egress none|all|LIST [--deny LIST] | capsule network log ID [--limit N] [--json]',
    );
  }
  const vm = await capsule.microvms.get(id);
  if (sub === 'set') {
    const policy = policyFromFlags(parsed, null);
    if (!policy) throw new UsageError('capsule network set needs --egress');
    const info = await vm.network.update(policy);
    process.stdout.write(
      has(parsed, 'json')
        ? JSON.stringify(info.network, null, 2) + '\n'
        : `${info.id} egress ${describe(info.network)}\n`,
    );
    return 0;
  }
  const limit = flag(parsed, 'limit');
  const entries = await vm.network.log(limit ? { limit: Number(limit) } : {});
  if (has(parsed, 'json')) process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
  else
    for (const e of entries)
      process.stdout.write(
        `${e.time}  ${e.verdict.padEnd(5)}  ${e.protocol.padEnd(4)}  ${(e.name ?? '-').padEnd(28)}  ${e.address || '-'}${e.port === null ? '' : `:${e.port}`}  ${e.rule}\n`,
      );
  return 0;
}

export function describe(network: { egress: string; allow: string[]; deny: string[] }): string {
  return `${network.egress === 'allowlist' ? network.allow.join(',') : network.egress}${network.deny.length ? ` (deny ${network.deny.join(',')})` : ''}`;
}
