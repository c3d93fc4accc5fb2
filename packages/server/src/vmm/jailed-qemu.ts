// A jailed QEMU's start (jail/): its files given to its uid, its cgroup made (removed by the machine's
// cleanup), and the launcher command that binds exactly its files into its jail. And the seal of its
// run directory once QEMU is up.
import fs from 'node:fs';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { VmJail } from '../jail/jailer.js';
import { chownNoFollow } from '../jail/vm-files.js';
import { tapBatch } from '../network/netns.js';
import { backingChain } from './backing-chain.js';
import type { Cleanup } from './cleanup.js';
import type { LaunchOptions } from './launch-options.js';
import { vmPaths, type MachineSpec } from './qemu-args.js';

/** The run directory is QEMU's until it is up; then root's, so nothing can be planted in it. */
export function sealRunDir(vmDir: string): void {
  const run = vmPaths(vmDir).run;
  chownNoFollow(run, 0, 0);
  fs.chmodSync(run, 0o755); // QEMU still reaches the sockets the server makes there (suspend)
}

/** What the machine decided: its overlay, the frozen layer under it, and its guest RAM. */
interface Layout extends LaunchOptions {
  overlayPath: string;
  backing: string;
  memory: MachineSpec['memory'];
}

/**
 * What QEMU may see inside its jail besides QEMU itself: the kernel, the initrd and the frozen disk
 * layers under its overlay (read-only), its memory file (read-only unless it is a snapshot being made),
 * and its run directory and overlay. The disk chain is read from layers the server made, never from
 * the overlay a VM can rewrite.
 */
function jailFiles({ kernelPath, initrdPath, backing, vmDir, overlayPath, memory }: Layout): {
  readOnly: string[];
  writable: string[];
} {
  const readOnly = new Set([kernelPath, initrdPath, ...backingChain(backing)]);
  const writable = [vmPaths(vmDir).run, overlayPath];
  if (memory?.kind === 'file' && memory.share) writable.push(memory.path);
  else if (memory?.kind === 'file') readOnly.add(memory.path);
  // a bind mount follows a link: whatever a VM's files are, none may be one (they sit in root's directories)
  for (const file of [...readOnly, ...writable]) {
    if (fs.lstatSync(file).isSymbolicLink())
      throw new CapsuleError(ErrorCode.JAIL_FAILED, `refusing to jail ${file}: it is a symbolic link`, {
        step: 'jail',
      });
  }
  return { readOnly: [...readOnly], writable: [...new Set(writable)] };
}

/** Make the jail's parts and return the launcher command for `argv`. */
export function jailedQemu(jail: VmJail, vm: Layout, argv: string[], cleanup: Cleanup): [string, string[]] {
  const { memory, overlayPath } = vm;
  const run = vmPaths(vm.vmDir).run;
  // QEMU's uid owns what it writes: its run directory (until sealed), the overlay, and the memory file
  // of a snapshot being made
  chownNoFollow(run, jail.uid, jail.gid);
  chownNoFollow(overlayPath, jail.uid, jail.gid);
  if (memory?.kind === 'file' && memory.share) {
    fs.closeSync(
      fs.openSync(memory.path, fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600),
    );
    chownNoFollow(memory.path, jail.uid, jail.gid);
  }
  jail.cgroup.create(jail.limits(vm));
  cleanup.push('cgroup', () => jail.cgroup.remove());
  return jail.command(
    {
      ...jailFiles(vm),
      kvm: vm.accelerator === 'kvm',
      netns: vm.netns
        ? { name: vm.netns, tapBatch: tapBatch(jail, false), tapReplaceBatch: tapBatch(jail, true) }
        : undefined,
      isDirectory: (p) => p === run,
    },
    argv,
  );
}
