// Addresses and names of the per-VM network (design.md "Network"). Inside, every guest sees the same
// network as under QEMU's user-mode stack (10.0.2.15, gateway .2, DNS .3), so a snapshot restores
// without reconfiguring the guest; the VM's namespace maps it onto its own uplink /30.
import { cidrMask, formatIpv4, parseCidr } from '@capsule/protocol';

export const GUEST_ADDRESS = '10.0.2.15';
export const GATEWAY_ADDRESS = '10.0.2.2';
export const DNS_ADDRESS = '10.0.2.3';
/** The gateway's MAC under user-mode networking (52:55 + its address): a restored guest's ARP cache stays right. */
export const GATEWAY_MAC = '52:55:0a:00:02:02';
/** Inside the namespace: the tap QEMU attaches to, and the uplink to the host. */
export const TAP_DEVICE = 'tap0';
export const UPLINK_DEVICE = 'up0';
/** Host-side veth names start with this (the host table matches on it). */
export const HOST_VETH_PREFIX = 'cvh';
export const NETNS_PREFIX = 'capsule-';
/** Where a VM's resolver and SNI proxy listen, on its uplink's host address. */
export const RESOLVER_PORT = 10053;
/** Name-checked guest ports (CAPSULE_EGRESS_NAME_PORTS) are proxied at NAME_PROXY_BASE + their index. */
const MAX_NAME_CHECKED_PORTS = 16;
const NAME_PROXY_BASE = 10100;
/** Every port of ours a VM's flows may reach on its uplink's host address (through a DNAT only), as nft. */
export const SERVICE_PORTS = `${RESOLVER_PORT}, ${NAME_PROXY_BASE}-${NAME_PROXY_BASE + MAX_NAME_CHECKED_PORTS - 1}`;

export interface NameCheckedPort {
  /** The guest's destination port. */
  port: number;
  /** Where the name proxy listens for it, on the uplink's host address. */
  proxyPort: number;
}

/** Guest ports whose domain-admitted flows must say a listed name (SNI/Host), each with its proxy port. */
export function nameCheckedPorts(ports: readonly number[]): NameCheckedPort[] {
  if (ports.length > MAX_NAME_CHECKED_PORTS) throw new Error(`at most ${MAX_NAME_CHECKED_PORTS} name-checked ports`);
  return ports.map((port, i) => ({ port, proxyPort: NAME_PROXY_BASE + i }));
}
/** The NFLOG group egress verdicts are logged to, inside each namespace. */
export const NFLOG_GROUP = 7;

export interface SlotAddresses {
  slot: number;
  netns: string;
  hostVeth: string;
  /** The host end of the uplink (the namespace's default gateway, where its resolver listens). */
  hostAddress: string;
  /** The namespace end of the uplink (guest flows leave with this source). */
  nsAddress: string;
}

/** Uplink /30s are carved from `pool` (CAPSULE_NET_POOL, default 10.200.0.0/16): slot n is the n-th /30. */
export function slotCount(pool: string): number {
  const cidr = parseCidr(pool);
  if (!cidr || cidr.prefix > 30) throw new Error(`CAPSULE_NET_POOL ${pool} is not an IPv4 CIDR of /30 or larger`);
  return 2 ** (32 - cidr.prefix) / 4;
}

/**
 * Names carry the /30's address in hex (capsule-0ac80004, cvh0ac80004), not the slot number, so servers
 * with different pools on one machine never collide and overlapping pools claim the same names.
 */
export function slotAddresses(pool: string, slot: number): SlotAddresses {
  const cidr = parseCidr(pool)!;
  if (!Number.isInteger(slot) || slot < 0 || slot >= slotCount(pool))
    throw new Error(`network slot ${slot} is outside ${pool}`);
  const base = ((cidr.network & cidrMask(cidr.prefix)) >>> 0) + slot * 4;
  const tag = base.toString(16).padStart(8, '0');
  return {
    slot,
    netns: `${NETNS_PREFIX}${tag}`,
    hostVeth: `${HOST_VETH_PREFIX}${tag}`,
    hostAddress: formatIpv4(base + 1),
    nsAddress: formatIpv4(base + 2),
  };
}

/** The slot in `pool` of a namespace name we made, or null for anyone else's. */
export function slotOfNetns(pool: string, name: string): number | null {
  const m = /^capsule-([0-9a-f]{8})$/.exec(name);
  const cidr = parseCidr(pool);
  if (!m || !cidr) return null;
  const offset = parseInt(m[1], 16) - cidr.network;
  return offset >= 0 && offset % 4 === 0 && offset / 4 < slotCount(pool) ? offset / 4 : null;
}
