// The QEMU command line for one microVM. Hardened: no defaults, no user config, seccomp sandbox,
// nothing from the host filesystem shared in (only the kernel/initrd/disk images are opened).
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { VmShape } from '@capsule/protocol';
import { tcgTimerArgs } from './guest-timing.js';

export type Accelerator = 'kvm' | 'tcg';

export interface MachineSpec extends VmShape {
  vmDir: string;
  kernelPath: string;
  initrdPath: string;
  overlayPath: string;
  accelerator: Accelerator;
  /**
   * The network namespace whose tap (tap0) the guest NIC attaches to (QEMU is started inside it). Without
   * one the NIC gets an isolated user-mode stack that reaches nothing (ready snapshots, probes, floors).
   */
  netns?: string;
  /**
   * Also an unattached, isolated user-mode netdev: a state saved before per-VM namespaces (NIC on
   * user-mode networking) carries that backend's section, and loads only where one exists.
   */
  legacyUserNet?: boolean;
  hostname: string;
  extraKernelArgs?: string;
  /**
   * Guest RAM: an anonymous memfd (cold boot), or a file — shared while a ready snapshot is being made
   * (guest writes land in the file), private when cloning from one (copy-on-write, the file is never
   * written). A memfd/file is shmem or page cache, so the host never backs it with 2 MiB THP pages.
   */
  memory?: { kind: 'memfd' } | { kind: 'file'; path: string; share: boolean };
  /** Start paused, waiting for device state via QMP migrate-incoming. */
  incoming?: boolean;
}

/**
 * The guest NIC's MAC, derived from its hostname (the VM id): stable across suspend/resume, different for
 * every clone of one snapshot. Locally administered (0x02 bit), unicast.
 */
export function guestMacAddress(hostname: string): string {
  const bytes = createHash('sha256').update(hostname).digest().subarray(0, 6);
  bytes[0] = (bytes[0] & 0xfc) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The unattached user-mode netdev of VMs whose state predates namespaces (legacyUserNet). */
export const LEGACY_NETDEV = 'legacy0';

/** The guest RAM backend's id, which is also its RAM block's name in a migration stream. */
export const RAM_BACKEND_ID = 'ram0';

/**
 * A VM's directory is the server's (root, 0700); `run/` in it is QEMU's own while it starts (its sockets,
 * pid file) and is sealed (root-owned) once QEMU is up. The overlay sits beside `run/`:
 * QEMU's uid owns the file, never the directory entry.
 */
export const vmPaths = (vmDir: string) => ({
  run: path.join(vmDir, 'run'),
  qmp: path.join(vmDir, 'run', 'qmp.sock'),
  agent: path.join(vmDir, 'run', 'agent.sock'),
  /** QEMU serves the console here; the server keeps it, bounded, in `serialLog` (vmm/serial-log.ts). */
  serialSocket: path.join(vmDir, 'run', 'serial.sock'),
  serialLog: path.join(vmDir, 'serial.log'),
  pid: path.join(vmDir, 'run', 'qemu.pid'),
  /** Migration streams: QEMU listens on `incoming` (restore); the server listens on `outgoing` (save). */
  incoming: path.join(vmDir, 'run', 'incoming.sock'),
  outgoing: path.join(vmDir, 'run', 'outgoing.sock'),
  qemuLog: path.join(vmDir, 'qemu.log'),
  overlay: path.join(vmDir, 'disk.qcow2'),
});

export function kernelCmdline(spec: Pick<MachineSpec, 'hostname' | 'extraKernelArgs' | 'accelerator'>): string {
  // quiet: the serial port is slow under TCG; panics still print (KERN_EMERG).
  // panic=-1 + -no-reboot: a guest panic ends the QEMU process, which the host sees as a failure.
  return [
    'console=ttyS0',
    'quiet',
    'panic=-1',
    'reboot=t',
    'pci=off',
    'random.trust_cpu=on',
    ...(spec.accelerator === 'tcg' ? tcgTimerArgs() : []),
    // the agent runs V8's interpreter only under TCG (runtimes/init.sh says why)
    ...(spec.accelerator === 'tcg' ? ['capsule.jitless=1'] : []),
    `capsule.hostname=${spec.hostname}`,
    spec.extraKernelArgs ?? '',
  ]
    .join(' ')
    .trim();
}

export function qemuArgs(spec: MachineSpec): string[] {
  const p = vmPaths(spec.vmDir);
  const accel =
    spec.accelerator === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,tb-size=64', '-cpu', 'max'];
  const netdev = spec.netns ? 'tap,id=net0,ifname=tap0,script=no,downscript=no' : 'user,id=net0,restrict=on';
  return [
    // TCG guests are told their TSC rate (guest-timing.ts), so the legacy PIT/PIC can go (~5% faster boot).
    // KVM guests keep them: untested here, and their clock comes from kvmclock anyway.
    '-M',
    `microvm,memory-backend=${RAM_BACKEND_ID}` +
      (spec.accelerator === 'tcg' && tcgTimerArgs().length > 0 ? ',pit=off,pic=off' : ''),
    ...accel,
    // qboot, as QEMU 7.2 had for microvm: Debian's QEMU 10 defaults to SeaBIOS's (128 KiB, slower to
    // boot), and a state saved on 7.2 loads only with the same firmware size
    '-bios',
    'qboot.rom',
    '-m',
    `${spec.memoryMib}M`,
    '-object',
    memoryBackend(spec),
    '-smp',
    String(spec.vcpuCount),
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-no-reboot',
    '-display',
    'none',
    '-sandbox',
    'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    '-kernel',
    spec.kernelPath,
    '-initrd',
    spec.initrdPath,
    '-append',
    kernelCmdline(spec),
    '-chardev',
    `socket,id=serial0,path=${p.serialSocket},server=on,wait=off`,
    '-serial',
    'chardev:serial0',
    '-drive',
    `id=root,file=${spec.overlayPath},format=qcow2,if=none,discard=unmap`,
    '-device',
    'virtio-blk-device,drive=root',
    '-netdev',
    netdev,
    '-device',
    `virtio-net-device,netdev=net0,mac=${guestMacAddress(spec.hostname)}`,
    ...(spec.netns && spec.legacyUserNet ? ['-netdev', `user,id=${LEGACY_NETDEV},restrict=on`] : []),
    '-object',
    'rng-random,id=rng0,filename=/dev/urandom',
    '-device',
    'virtio-rng-device,rng=rng0',
    '-device',
    'virtio-serial-device,max_ports=2',
    '-chardev',
    `socket,id=agent,path=${p.agent},server=on,wait=off`,
    '-device',
    'virtserialport,chardev=agent,name=org.capsule.agent',
    '-qmp',
    `unix:${p.qmp},server=on,wait=off`,
    '-pidfile',
    p.pid,
    ...(spec.incoming ? ['-incoming', 'defer'] : []),
  ];
}

function memoryBackend(spec: MachineSpec): string {
  const memory = spec.memory ?? { kind: 'memfd' };
  // anonymous RAM would get transparent huge pages: ~3x the host RSS for the same guest (measured)
  if (memory.kind === 'memfd') return `memory-backend-memfd,id=${RAM_BACKEND_ID},size=${spec.memoryMib}M`;
  // a clone opens the snapshot's file read-only (QEMU >= 8.2: readonly=on,rom=off) and maps it privately
  // and writable: the file is writable by no VM, and every write lands in the VM's own copied pages
  const mode = memory.share ? 'share=on' : 'share=off,readonly=on,rom=off';
  return `memory-backend-file,id=${RAM_BACKEND_ID},size=${spec.memoryMib}M,mem-path=${memory.path},${mode}`;
}
