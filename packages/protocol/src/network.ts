// Egress policy and egress log on the wire (design.md "Network"). Entries are parsed here, once, so the
// server, the SDK and the CLI agree on what `pypi.org`, `*.example.com`, `203.0.113.7` and
// `198.51.100.0/24` mean and refuse the same malformed ones with the same message.
import { z } from 'zod';

export const MAX_NETWORK_ENTRIES = 256;

export type EgressEntry =
  | { kind: 'domain'; name: string }
  /** `*.example.com`: every subdomain of `suffix`, not `suffix` itself. */
  | { kind: 'wildcard'; suffix: string }
  | { kind: 'cidr'; network: number; prefix: number; text: string };

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** An IPv4 address as an unsigned 32-bit number, or null. */
export function parseIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    value = value * 256 + Number(part);
  }
  return value >>> 0;
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

export const cidrMask = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** `a.b.c.d/n` or a bare address (a /32); host bits must be zero. */
export function parseCidr(text: string): { network: number; prefix: number } | null {
  const [addr, bits, extra] = text.split('/');
  if (extra !== undefined) return null;
  const ip = parseIpv4(addr);
  if (ip === null) return null;
  if (bits === undefined) return { network: ip, prefix: 32 };
  if (!/^(0|[1-9][0-9]?)$/.test(bits) || Number(bits) > 32) return null;
  const prefix = Number(bits);
  if ((ip & ~cidrMask(prefix)) >>> 0 !== 0) return null;
  return { network: ip, prefix };
}

export function cidrsOverlap(a: { network: number; prefix: number }, b: { network: number; prefix: number }): boolean {
  const mask = cidrMask(Math.min(a.prefix, b.prefix));
  return (a.network & mask) >>> 0 === (b.network & mask) >>> 0;
}

export function isDomainName(name: string): boolean {
  if (name.length > 253) return false;
  const labels = name.split('.');
  return labels.length >= 2 && labels.every((l) => LABEL.test(l)) && !/^[0-9]+$/.test(labels[labels.length - 1]);
}

/** Parse one allow/deny entry; the error says what is wrong with it. */
export function parseEgressEntry(raw: string): EgressEntry | { error: string } {
  const text = raw.trim().toLowerCase().replace(/\.$/, '');
  if (/^[0-9./]+$/.test(text)) {
    const cidr = parseCidr(text);
    if (!cidr)
      return { error: `"${raw}" is not an IPv4 address or CIDR (a.b.c.d or a.b.c.d/n, n ≤ 32, no host bits set)` };
    return { kind: 'cidr', ...cidr, text: `${formatIpv4(cidr.network)}/${cidr.prefix}` };
  }
  if (text.startsWith('*.')) {
    const suffix = text.slice(2);
    if (!isDomainName(suffix))
      return {
        error: `"${raw}" is not a valid wildcard: use *.example.com (subdomains of a name with at least two labels)`,
      };
    return { kind: 'wildcard', suffix };
  }
  if (!isDomainName(text)) return { error: `"${raw}" is not a domain name, *.wildcard, IPv4 address or CIDR` };
  return { kind: 'domain', name: text };
}

/** Whether `name` (lowercase, no trailing dot) is matched by a domain or wildcard entry. */
export function entryMatchesName(entry: EgressEntry, name: string): boolean {
  if (entry.kind === 'domain') return entry.name === name;
  if (entry.kind === 'wildcard') return name.endsWith(`.${entry.suffix}`);
  return false;
}

export const entryText = (entry: EgressEntry): string =>
  entry.kind === 'domain' ? entry.name : entry.kind === 'wildcard' ? `*.${entry.suffix}` : entry.text;

const EntryList = z.array(z.string().max(260)).max(MAX_NETWORK_ENTRIES, `at most ${MAX_NETWORK_ENTRIES} entries`);

export const EgressMode = z.enum(['none', 'all', 'allowlist']);
export type EgressMode = z.infer<typeof EgressMode>;

/** `network` on launch and on PATCH …/network. `egress` defaults to none; deny wins over allow. */
export const NetworkPolicy = z
  .object({ egress: EgressMode.default('none'), allow: EntryList.optional(), deny: EntryList.optional() })
  .strict()
  .superRefine((policy, ctx) => {
    for (const key of ['allow', 'deny'] as const) {
      (policy[key] ?? []).forEach((raw, i) => {
        const parsed = parseEgressEntry(raw);
        if ('error' in parsed) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key, i], message: parsed.error });
      });
    }
    if (policy.egress === 'allowlist' && (policy.allow ?? []).length === 0)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['allow'],
        message: 'egress allowlist needs at least one allow entry',
      });
    if (policy.egress !== 'allowlist' && (policy.allow ?? []).length > 0)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['allow'],
        message: `allow entries need egress "allowlist" (egress is "${policy.egress}")`,
      });
  });
export type NetworkPolicyInput = z.input<typeof NetworkPolicy>;
export type NetworkPolicyRequest = z.output<typeof NetworkPolicy>;

/** The policy as stored and returned: entries normalized, both lists present. */
export const ResolvedNetworkPolicy = z
  .object({ egress: EgressMode, allow: z.array(z.string()), deny: z.array(z.string()) })
  .meta({ id: 'ResolvedNetworkPolicy' });
export type ResolvedNetworkPolicy = z.infer<typeof ResolvedNetworkPolicy>;

export function resolveNetworkPolicy(input: z.output<typeof NetworkPolicy>): ResolvedNetworkPolicy {
  const normalize = (list: string[] | undefined): string[] => [
    ...new Set((list ?? []).map((raw) => entryText(parseEgressEntry(raw) as EgressEntry))),
  ];
  return { egress: input.egress, allow: normalize(input.allow), deny: normalize(input.deny) };
}

export const EgressVerdict = z.enum(['allow', 'deny']);

/** One egress log entry: a DNS query, or a new flow out of the guest. */
export const EgressLogEntry = z.object({
  time: z.string(),
  protocol: z.enum(['dns', 'tcp', 'udp', 'icmp', 'other']),
  address: z.string(),
  port: z.number().nullable(),
  name: z.string().optional(),
  verdict: EgressVerdict,
  /** What decided: `allow:pypi.org`, `deny:198.51.100.0/24`, `always-denied:private`, `egress:none`, … */
  rule: z.string(),
});
export type EgressLogEntry = z.infer<typeof EgressLogEntry>;

export const EgressLog = z.object({ entries: z.array(EgressLogEntry) });
export type EgressLog = z.infer<typeof EgressLog>;
