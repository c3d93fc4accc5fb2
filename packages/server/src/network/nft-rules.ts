// The nftables rules of one VM's namespace, and of the host's `capsule` table, as text for `nft -f`.
// Pure: every input is an argument, so the rules are unit-tested as text and applied atomically.
//
// Inside the namespace (table inet capsule):
//   prerouting  DNS to 10.0.2.3 → this VM's resolver; in allowlist mode, 80/443 to an address only a
//               name admitted → the SNI/Host-checking proxy; the host's TCP to the namespace's uplink
//               address → the guest (the endpoint's direct path; the guest sees it come from 10.0.2.2)
//   forward     replies in; guest flows out through `egress`: already admitted under this policy
//               generation → accept; always-denied → drop; deny list → drop; then the mode
//   input       nothing from the guest reaches the namespace itself (its gateway address included)
// Every verdict on a new flow is logged to NFLOG with the rule that made it.
import {
  DNS_ADDRESS,
  GUEST_ADDRESS,
  HOST_VETH_PREFIX,
  NFLOG_GROUP,
  RESOLVER_PORT,
  SERVICE_PORTS,
  TAP_DEVICE,
  UPLINK_DEVICE,
  type NameCheckedPort,
  type SlotAddresses,
} from './addressing.js';
import { ALWAYS_DENIED, type CompiledPolicy } from './policy.js';

const TABLE = 'inet capsule';

const log = (prefix: string): string => `log prefix "${prefix} " group ${NFLOG_GROUP}`;
const elements = (list: readonly string[]): string => (list.length ? ` elements = { ${list.join(', ')} }` : '');

export interface NamespaceRulesInput {
  addresses: SlotAddresses;
  policy: CompiledPolicy;
  /** Bumped on every policy change: flows admitted under an older one are checked again. */
  generation: number;
  privateAllow: readonly string[];
  /** The host's own addresses (every interface): always denied, and logged as such. */
  hostAddresses: readonly string[];
  /** Ports whose domain-admitted flows go to the name proxy. */
  nameChecked: readonly NameCheckedPort[];
  /** Addresses learned from DNS answers for allowed names, with seconds left. */
  learned: ReadonlyArray<{ address: string; ttlSeconds: number }>;
}

/** The whole table, created from nothing (a new namespace). */
export function namespaceRuleset(input: NamespaceRulesInput): string {
  const { addresses } = input;
  const always = [...ALWAYS_DENIED.map((d) => d.cidr), ...input.hostAddresses.map((a) => `${a}/32`)];
  // the guest's DNS, whatever server it asks, goes to its resolver; the host reaches the guest's ports
  const toResolver = `meta l4proto { tcp, udp } th dport 53 dnat ip to ${addresses.hostAddress}:${RESOLVER_PORT}`;
  const toGuest = `ip daddr ${addresses.nsAddress} meta l4proto tcp dnat ip to ${GUEST_ADDRESS}`;
  return `table ${TABLE} {
  set always_denied { type ipv4_addr; flags interval; auto-merge;${elements(always)} }
  set private_allow { type ipv4_addr; flags interval; auto-merge;${elements(input.privateAllow)} }
  set allow { type ipv4_addr; flags interval; auto-merge; }
  set deny { type ipv4_addr; flags interval; auto-merge; }
  set learned { type ipv4_addr; flags timeout; }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${TAP_DEVICE}" ip daddr ${DNS_ADDRESS} ${toResolver}
    iifname "${TAP_DEVICE}" jump name_checked
    iifname "${UPLINK_DEVICE}" ip saddr ${addresses.hostAddress} ${toGuest}
  }
  chain name_checked {
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${UPLINK_DEVICE}" masquerade
    oifname "${TAP_DEVICE}" ct status dnat masquerade
  }
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "${UPLINK_DEVICE}" oifname "${TAP_DEVICE}" ct state established,related accept
    iifname "${UPLINK_DEVICE}" oifname "${TAP_DEVICE}" ip saddr ${addresses.hostAddress} ct status dnat accept
    iifname "${TAP_DEVICE}" oifname "${UPLINK_DEVICE}" ct direction reply accept
    iifname "${TAP_DEVICE}" oifname "${UPLINK_DEVICE}" jump egress
  }
  chain egress {
  }
  chain mode {
  }
}
${policyRules(input)}`;
}

/** Replace the policy (one transaction: sets refilled, chains rewritten); the rest of the table stays. */
export function policyRules(input: NamespaceRulesInput): string {
  const { policy, generation, addresses } = input;
  const lines: string[] = [];
  const set = (name: string, list: readonly string[]): void => {
    lines.push(`flush set ${TABLE} ${name}`);
    if (list.length) lines.push(`add element ${TABLE} ${name} {${list.join(', ')} }`);
  };
  set(
    'allow',
    policy.allowCidrs.map((c) => c.text),
  );
  set(
    'deny',
    policy.denyCidrs.map((c) => c.text),
  );
  set(
    'learned',
    input.learned.map((l) => `${l.address} timeout ${Math.max(1, Math.round(l.ttlSeconds))}s`),
  );

  lines.push(`flush chain ${TABLE} name_checked`);
  if (policy.egress === 'allowlist') {
    for (const { port, proxyPort } of input.nameChecked) {
      lines.push(
        `add rule ${TABLE} name_checked ip daddr != @allow ip daddr != @deny ip daddr @learned tcp dport ` +
          `${port} dnat ip to ${addresses.hostAddress}:${proxyPort}`,
      );
    }
  }

  lines.push(`flush chain ${TABLE} egress`);
  const egress = (rule: string): number => lines.push(`add rule ${TABLE} egress ${rule}`);
  // our own services on the uplink's host end, reached only through the DNATs above
  egress(
    `ct status dnat ip daddr ${addresses.hostAddress} meta l4proto { tcp, udp } th dport { ${SERVICE_PORTS} } accept`,
  );
  egress(`ct state established,related ct mark ${generation} accept`);
  for (const d of ALWAYS_DENIED)
    egress(`ip daddr != @private_allow ip daddr ${d.cidr} ${log(`deny always-denied:${d.why}`)} drop`);
  egress(`ip daddr != @private_allow ip daddr @always_denied ${log('deny always-denied:host')} drop`);
  // names are resolved by Capsule's resolver only: no other DNS (or DNS over TLS) server, in any mode
  egress(`meta l4proto { tcp, udp } th dport { 53, 853 } ${log('deny dns-elsewhere')} drop`);
  for (const c of policy.denyCidrs) egress(`ip daddr ${c.text} ${log(`deny deny:${c.text}`)} drop`);
  egress('goto mode');

  lines.push(`flush chain ${TABLE} mode`);
  const mode = (rule: string): number => lines.push(`add rule ${TABLE} mode ${rule}`);
  const admit = (prefix: string): string => `ct mark set ${generation} ${log(`allow ${prefix}`)} accept`;
  if (policy.egress === 'all') mode(admit('egress:all'));
  if (policy.egress === 'allowlist') {
    for (const c of policy.allowCidrs) mode(`ip daddr ${c.text} ${admit(`allow:${c.text}`)}`);
    mode(`ip daddr @learned ${admit('dns')}`);
    mode(`${log('deny not-allowed')} drop`);
  }
  if (policy.egress === 'none') mode(`${log('deny egress:none')} drop`);
  return `${lines.join('\n')}\n`;
}

/** Add addresses a DNS answer opened (refreshing their timeout when already there). */
export function learnRules(entries: ReadonlyArray<{ address: string; ttlSeconds: number }>): string {
  // add (a no-op when present) makes the delete safe; the second add sets the new timeout
  return (
    entries
      .map((e) =>
        [
          `add element ${TABLE} learned { ${e.address} }`,
          `delete element ${TABLE} learned { ${e.address} }`,
          `add element ${TABLE} learned { ${e.address} timeout ${Math.round(e.ttlSeconds)}s }`,
        ].join('\n'),
      )
      .join('\n') + '\n'
  );
}

/**
 * The host's table: guest flows are forwarded out and masqueraded; nothing from a VM's uplink reaches
 * the host itself except its resolver and SNI proxy; no VM's uplink reaches another's; only root (the
 * server: endpoints, resolvers) opens connections into a VM's namespace, no other user of the host.
 * It names no pool: servers with different pools on one machine write the same table. Shared by every
 * Capsule server on the machine: recreated whole, idempotently.
 */
export function hostRuleset(): string {
  const veth = `"${HOST_VETH_PREFIX}*"`;
  return `table ${TABLE} {
  chain input {
    type filter hook input priority filter - 10; policy accept;
    iifname ${veth} ct state established,related accept
    iifname ${veth} meta l4proto { tcp, udp } th dport { ${SERVICE_PORTS} } accept
    iifname ${veth} drop
  }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname ${veth} oifname ${veth} drop
    iifname ${veth} accept
    oifname ${veth} ct state established,related accept
    oifname ${veth} drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    iifname ${veth} oifname != ${veth} masquerade
  }
  chain output {
    type filter hook output priority filter - 10; policy accept;
    oifname ${veth} meta skuid != 0 drop
  }
}
`;
}
