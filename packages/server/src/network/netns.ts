// One VM's network namespace, made and unmade with iproute2 and nftables: a veth uplink to the host
// (a /30 of CAPSULE_NET_POOL), a tap owned by QEMU's user, the guest's addressing on the tap, and the
// namespace's nftables table. Namespaces are claimed machine-wide by name (`ip netns add` fails if the
// name exists), so several servers on one machine never share one.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import {
  DNS_ADDRESS,
  GATEWAY_ADDRESS,
  GATEWAY_MAC,
  TAP_DEVICE,
  UPLINK_DEVICE,
  type SlotAddresses,
} from './addressing.js';

const execFileAsync = promisify(execFile);
const NETNS_DIR = '/run/netns';

export const netnsPath = (netns: string): string => `${NETNS_DIR}/${netns}`;

/** Run a command; its stderr becomes the error. `input` is written to its stdin. */
export async function run(command: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await execFileAsync(command, args, { maxBuffer: 16 << 20 }).catch(
      (err: NodeJS.ErrnoException & { stderr?: string }) => {
        throw new Error(`${command} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
      },
    );
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')}: ${err.trim() || `exit ${code}`}`)),
    );
    child.stdin.end(input);
  });
}

/** `nft -f -` inside a namespace (or on the host when netns is null): one atomic transaction. */
export function nft(netns: string | null, rules: string): Promise<string> {
  return netns === null
    ? run('nft', ['-f', '-'], rules)
    : run('nsenter', [`--net=${netnsPath(netns)}`, '--', 'nft', '-f', '-'], rules);
}

/**
 * Make the namespace and its devices. Returns false when the name is taken (another VM or server has
 * the slot); throws NETWORK_FAILED when it cannot be made, after removing whatever was made.
 */
export async function createNamespace(
  addresses: SlotAddresses,
  initialRules: string,
  opts: { tap: boolean },
): Promise<boolean> {
  const { netns, hostVeth, hostAddress, nsAddress } = addresses;
  try {
    await run('ip', ['netns', 'add', netns]);
  } catch (err) {
    if (/File exists/.test((err as Error).message)) return false;
    throw new CapsuleError(
      ErrorCode.NETWORK_FAILED,
      `cannot create network namespace ${netns}: ${(err as Error).message}`,
      { step: 'netns', cause: err },
    );
  }
  try {
    await run('ip', ['link', 'del', hostVeth]).catch(() => undefined); // left by a namespace torn down mid-way
    await run(
      'ip',
      ['-b', '-'],
      [
        `link add ${hostVeth} type veth peer name ${UPLINK_DEVICE} netns ${netns}`,
        `addr add ${hostAddress}/30 dev ${hostVeth}`,
        `link set ${hostVeth} up`,
      ].join('\n') + '\n',
    );
    await run(
      'ip',
      ['-n', netns, '-b', '-'],
      [
        'link set lo up',
        `addr add ${nsAddress}/30 dev ${UPLINK_DEVICE}`,
        `link set ${UPLINK_DEVICE} up`,
        `route add default via ${hostAddress}`,
        ...(opts.tap ? [tapBatch(null, false)] : []),
      ].join('\n') + '\n',
    );
    // forwarding on, IPv6 off (the guest has none), then the rules: all inside the namespace
    await run(
      'nsenter',
      [
        `--net=${netnsPath(netns)}`,
        '--',
        'sh',
        '-c',
        'echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && exec nft -f -',
      ],
      initialRules,
    );
    return true;
  } catch (err) {
    await deleteNamespace(addresses);
    throw new CapsuleError(
      ErrorCode.NETWORK_FAILED,
      `cannot set up network namespace ${netns}: ${(err as Error).message}`,
      { step: 'netns', cause: err },
    );
  }
}

/**
 * `ip -b` lines that make the namespace's tap (the guest's gateway and DNS addresses, the gateway MAC a
 * snapshot expects). Only `owner` may attach to it (null: only root). A namespace is made before anyone
 * knows which uid gets it, so under the jail it is made without a tap and the jail's launcher makes it for
 * its VM's uid just before QEMU starts; `replace` first deletes a tap already there (a namespace made with
 * one, a QEMU relaunched in it). Deleting a device waits out the kernel's RCU grace periods (10-30 ms
 * measured) where adding one takes ~2 ms: so the launcher tries the fresh batch first.
 */
export function tapBatch(owner: { uid: number; gid: number } | null, replace: boolean): string {
  return [
    ...(replace ? [`tuntap del dev ${TAP_DEVICE} mode tap`] : []),
    `tuntap add dev ${TAP_DEVICE} mode tap${owner ? ` user ${owner.uid} group ${owner.gid}` : ''}`,
    `link set ${TAP_DEVICE} address ${GATEWAY_MAC}`,
    `addr add ${GATEWAY_ADDRESS}/24 dev ${TAP_DEVICE}`,
    `addr add ${DNS_ADDRESS}/32 dev ${TAP_DEVICE}`,
    `link set ${TAP_DEVICE} up`,
  ].join('\n');
}

/** Remove the namespace with everything in it; the uplink first, so its name is free at once. Idempotent. */
export async function deleteNamespace(addresses: Pick<SlotAddresses, 'netns' | 'hostVeth'>): Promise<void> {
  await run('ip', ['link', 'del', addresses.hostVeth]).catch(() => undefined);
  if (fs.existsSync(netnsPath(addresses.netns)))
    await run('ip', ['netns', 'del', addresses.netns]).catch(() => undefined);
}

/**
 * Kill the flow readers (tcpdump) still in a namespace: a killed server's outlive it there, and would
 * both keep the namespace alive after `ip netns del` and hold its NFLOG group from the next reader.
 */
export async function killReaders(netns: string): Promise<void> {
  const pids = (await run('ip', ['netns', 'pids', netns]).catch(() => '')).split('\n').filter(Boolean);
  for (const pid of pids) {
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'tcpdump') process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

export function listNamespaces(): string[] {
  try {
    return fs.readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/** Every IPv4 address of the host (all interfaces): guests never reach any of them. */
export async function hostAddresses(): Promise<string[]> {
  const parsed = JSON.parse(await run('ip', ['-j', '-4', 'addr', 'show'])) as Array<{
    addr_info?: Array<{ local?: string }>;
  }>;
  return [...new Set(parsed.flatMap((i) => (i.addr_info ?? []).map((a) => a.local).filter((a): a is string => !!a)))];
}
