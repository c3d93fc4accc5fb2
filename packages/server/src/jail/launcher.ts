// The jail's launcher, in the manner of Firecracker's jailer, with Debian's util-linux: as root,
//   [nsenter --net=<VM netns>] unshare --mount  sh -c LAUNCHER  <items> -- qemu <args>
// The shell joins the VM's cgroups, makes the namespace's tap for the VM's uid, mounts a small tmpfs
// as the jail's root (in its private mount namespace: the mounts vanish with QEMU, nothing to clean up),
// bind-mounts the QEMU root, the device nodes QEMU opens and the VM's own files at their host paths
// (read-only where shared) with one `mount -a`, makes a /dev/kvm of its own under KVM, and
// execs `unshare --root` to chroot and drop to the VM's uid/gid (supplementary groups cleared, no
// capabilities) before QEMU's first instruction. Every exec keeps the pid: the child we spawn is QEMU.
// The tap is made in the background while the root is mounted, and awaited (its failure fails the launch).
// Items are positional arguments, never spliced into the script: no path can inject shell.
import fs from 'node:fs';
import path from 'node:path';
import type { QemuRoot } from './qemu-root.js';
import { netnsPath } from '../network/netns.js';

/** The host directory every jail mounts its root on (inside its own mount namespace). */
export const JAIL_MOUNTPOINT = '/run/capsule/jail';

const LAUNCHER = `set -eu
J=$1 U=$2 G=$3 T=
shift 3
while [ "$1" != -- ]; do
  case $1 in
  cg) echo $$ > "$2"; shift 2 ;;
  tap) ({ printf '%s\\n' "$2" | ip -b - 2>/dev/null; } || printf '%s\\n' "$3" | ip -b -) & T=$!; shift 3 ;;
  root) mount -t tmpfs -o mode=0755,size=256k,nosuid capsule-jail "$J"; shift ;;
  dirs) IFS='
'; set -f; mkdir -p -- $2; set +f; unset IFS; shift 2 ;;
  file) : > "$J$2"; shift 2 ;;
  binds) mount -a -T "$2"; shift 2 ;;
  dev) mknod -m "$5" "$J$2" c "$3" "$4"; chown "$U:$G" "$J$2"; shift 5 ;;
  *) echo "capsule jail: unknown item $1" >&2; exit 70 ;;
  esac
done
shift
[ -z "$T" ] || wait "$T"
exec unshare --root="$J" --wd=/ --setgid="$G" --setuid="$U" -- "$@"
`;

export interface JailPlan {
  uid: number;
  gid: number;
  /** cgroup.procs files to join before anything else. */
  cgroupProcs: string[];
  /** Host files and directories visible at the same path, read-only (kernel, disk chain, snapshot memory). */
  readOnly: string[];
  /** Host files and directories visible at the same path, writable by the VM's uid where it owns them. */
  writable: string[];
  /** Whether QEMU gets /dev/kvm (a node of its own, owned by the VM's uid). */
  kvm: boolean;
  /** The VM's network namespace, entered first; its tap is made for the VM's uid (`ip -b` lines: `tapBatch`, or
   * when that fails because the namespace has a tap, `tapReplaceBatch`). */
  netns?: { name: string; tapBatch: string; tapReplaceBatch: string };
  /** Directories among readOnly/writable (the rest are files). */
  isDirectory(hostPath: string): boolean;
  /** Where the jail's mount table is written (a root-only directory): one `mount -a` makes every bind. */
  fstabPath: string;
}

/** Host device nodes QEMU opens, bound in (read-write: the rng reads, /dev/null both ways, the tap's tun). */
const DEVICES = ['/dev/null', '/dev/urandom'];
const TUN = '/dev/net/tun';

/** fstab escapes whitespace and backslashes as octal. */
function fstabField(p: string): string {
  return p.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * argv (command, args) that starts `qemuArgs` as QEMU inside the jail described by `plan`; writes the
 * jail's mount table to `plan.fstabPath`.
 */
export function jailedCommand(root: QemuRoot, plan: JailPlan, qemuArgs: string[]): [string, string[]] {
  const items: string[] = [];
  for (const file of plan.cgroupProcs) items.push('cg', file);
  if (plan.netns) items.push('tap', plan.netns.tapBatch, plan.netns.tapReplaceBatch);
  items.push('root');
  const devices = plan.netns ? [...DEVICES, TUN] : DEVICES;
  const binds = [
    // QEMU's root: /usr, and the host's top-level links into it (/lib -> usr/lib) as binds of their targets
    ...root.entries.map((e) => ({
      from: e.link ? path.resolve(root.dir, e.link) : `${root.dir}/${e.name}`,
      to: `/${e.name}`,
      ro: true,
      dir: true,
    })),
    ...devices.map((d) => ({ from: d, to: d, ro: false, dir: false })),
    ...plan.readOnly.map((p) => ({ from: p, to: p, ro: true, dir: plan.isDirectory(p) })),
    ...plan.writable.map((p) => ({ from: p, to: p, ro: false, dir: plan.isDirectory(p) })),
  ];
  const dirs = new Set<string>(['/dev']);
  for (const b of binds) dirs.add(b.dir ? b.to : parentOf(b.to));
  for (const p of [...dirs, ...binds.map((b) => b.to)])
    if (p.includes('\n')) throw new Error(`a path with a newline cannot be jailed: ${JSON.stringify(p)}`);
  // one mkdir for all (paths inside the jail, one per line), the mountpoints of files, one mount -a
  items.push('dirs', [...dirs].map((d) => `${JAIL_MOUNTPOINT}${d}`).join('\n'));
  for (const b of binds) if (!b.dir) items.push('file', b.to);
  fs.writeFileSync(
    plan.fstabPath,
    binds
      .map((b) => `${fstabField(b.from)} ${fstabField(JAIL_MOUNTPOINT + b.to)} none ${b.ro ? 'bind,ro' : 'bind'} 0 0\n`)
      .join(''),
    { mode: 0o600 },
  );
  items.push('binds', plan.fstabPath);
  if (plan.kvm) items.push('dev', '/dev/kvm', '10', '232', '0600');
  const launcher = [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    '/bin/sh',
    '-c',
    LAUNCHER,
    'capsule-jail',
    JAIL_MOUNTPOINT,
    String(plan.uid),
    String(plan.gid),
    ...items,
    '--',
    root.binary,
    ...qemuArgs,
  ];
  if (!plan.netns) return [launcher[0], launcher.slice(1)];
  return ['nsenter', [`--net=${netnsPath(plan.netns.name)}`, '--', ...launcher]];
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}
