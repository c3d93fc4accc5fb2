// An egress policy compiled for enforcement: the CIDR entries go to nftables, the name entries to the
// resolver. Also what is denied whatever the policy says, and the check that a tenant's allowlist does
// not open any of it.
import {
  CapsuleError,
  ErrorCode,
  cidrsOverlap,
  entryMatchesName,
  entryText,
  parseCidr,
  parseEgressEntry,
  type EgressEntry,
  type EgressMode,
  type ResolvedNetworkPolicy,
} from '@capsule/protocol';

type Cidr = Extract<EgressEntry, { kind: 'cidr' }>;
type NameEntry = Exclude<EgressEntry, Cidr>;

/** Never reachable from a guest, whatever its policy (an operator may open some: CAPSULE_EGRESS_PRIVATE_ALLOW). */
export const ALWAYS_DENIED: ReadonlyArray<{ cidr: string; why: string }> = [
  { cidr: '0.0.0.0/8', why: 'this-network' },
  { cidr: '10.0.0.0/8', why: 'private' },
  { cidr: '100.64.0.0/10', why: 'shared-address-space' },
  { cidr: '127.0.0.0/8', why: 'loopback' },
  { cidr: '169.254.0.0/16', why: 'link-local' },
  { cidr: '172.16.0.0/12', why: 'private' },
  { cidr: '192.168.0.0/16', why: 'private' },
  { cidr: '224.0.0.0/4', why: 'multicast' },
  { cidr: '240.0.0.0/4', why: 'reserved' },
];

export interface Verdict {
  verdict: 'allow' | 'deny';
  rule: string;
}

export class CompiledPolicy {
  readonly egress: EgressMode;
  readonly allowCidrs: Cidr[];
  readonly denyCidrs: Cidr[];
  private readonly allowNames: NameEntry[];
  private readonly denyNames: NameEntry[];

  constructor(readonly policy: ResolvedNetworkPolicy) {
    const parse = (list: string[]): EgressEntry[] => list.map((raw) => parseEgressEntry(raw) as EgressEntry);
    const allow = parse(policy.allow);
    const deny = parse(policy.deny);
    this.egress = policy.egress;
    this.allowCidrs = allow.filter((e): e is Cidr => e.kind === 'cidr');
    this.denyCidrs = deny.filter((e): e is Cidr => e.kind === 'cidr');
    this.allowNames = allow.filter((e): e is NameEntry => e.kind !== 'cidr');
    this.denyNames = deny.filter((e): e is NameEntry => e.kind !== 'cidr');
  }

  /** Whether a guest may resolve `name` (the resolver answers NXDOMAIN otherwise), and which rule says so. */
  nameVerdict(name: string): Verdict {
    const denied = this.denyNames.find((e) => entryMatchesName(e, name));
    if (denied) return { verdict: 'deny', rule: `deny:${entryText(denied)}` };
    if (this.egress === 'none') return { verdict: 'deny', rule: 'egress:none' };
    if (this.egress === 'all') return { verdict: 'allow', rule: 'egress:all' };
    const allowed = this.allowNames.find((e) => entryMatchesName(e, name));
    if (allowed) return { verdict: 'allow', rule: `allow:${entryText(allowed)}` };
    // a name the allowlist does not cover may still be resolved when only CIDRs were listed: no,
    // an allowlist admits names only by name
    return { verdict: 'deny', rule: 'not-allowed' };
  }

  /**
   * Whether an address a listed name resolved to may be opened for it: not always-denied (an operator's
   * private allow aside) and not in the deny list.
   */
  addressVerdict(address: string, privateAllow: readonly string[]): Verdict {
    const ip = parseCidr(address);
    if (!ip) return { verdict: 'deny', rule: 'not-ipv4' };
    const opened = privateAllow.some((c) => cidrsOverlap(parseCidr(c)!, ip));
    const always = ALWAYS_DENIED.find((d) => cidrsOverlap(parseCidr(d.cidr)!, ip));
    if (always && !opened) return { verdict: 'deny', rule: `always-denied:${always.why}` };
    const denied = this.denyCidrs.find((c) => cidrsOverlap(c, ip));
    if (denied) return { verdict: 'deny', rule: `deny:${denied.text}` };
    return { verdict: 'allow', rule: 'dns' };
  }
}

/** A tenant may not open always-denied space with an allow entry (400, naming the entry). */
export function checkTenantPolicy(policy: ResolvedNetworkPolicy, privateAllow: readonly string[]): void {
  for (const raw of policy.allow) {
    const entry = parseEgressEntry(raw);
    if ('error' in entry || entry.kind !== 'cidr') continue;
    const clash = ALWAYS_DENIED.find((d) => cidrsOverlap(parseCidr(d.cidr)!, entry));
    const opened = privateAllow.some((c) => {
      const open = parseCidr(c)!;
      return open.prefix <= entry.prefix && cidrsOverlap(open, entry);
    });
    if (clash && !opened) {
      throw new CapsuleError(
        ErrorCode.VALIDATION_FAILED,
        `network.allow: "${raw}" overlaps ${clash.cidr} (${clash.why}), which is never reachable from a MicroVM`,
        { details: { entry: raw } },
      );
    }
  }
}
