// The read-only part of every jail: the QEMU binary, the shared libraries it loads and the x86 firmware
// a microvm reads, copied once into a root-owned directory keyed by what was copied (so an upgraded
// QEMU gets a new one). Each jail bind-mounts it read-only; nothing else of the host is in a jail.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { findExecutable, qemuMissing } from '../executables.js';

/**
 * The x86 firmware a microvm reads, looked up in Debian's QEMU firmware path (seen with strace:
 * /usr/share/seabios/bios-microvm.bin, /usr/share/qemu/linuxboot_dma.bin) with its kin.
 */
const FIRMWARE_DIRS = ['/usr/share/qemu', '/usr/share/seabios'];
const FIRMWARE = [
  'bios-microvm.bin',
  'qboot.rom',
  'bios.bin',
  'linuxboot.bin',
  'linuxboot_dma.bin',
  'pvh.bin',
  'multiboot.bin',
  'multiboot_dma.bin',
  'kvmvapic.bin',
];

export interface QemuRoot {
  /** The directory to bind-mount: it holds `usr/` and the host's top-level links into it (lib, lib64). */
  dir: string;
  /** The QEMU binary's absolute path, the same inside the jail as outside. */
  binary: string;
  /** Top-level entries of `dir` (to mount or link in a jail). */
  entries: Array<{ name: string; link: string | null }>;
}

/** The shared libraries `binary` loads (and its dynamic loader), by the paths the loader uses. */
function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
    else if (/not found/.test(line)) throw new Error(`QEMU needs a library that is missing: ${line.trim()}`);
  }
  return libs;
}

/**
 * Copy `file` to the same path under `root`, recreating the host's symlinks on the way (a merged-/usr
 * host has /lib → usr/lib), so the loader and QEMU find everything where they look on the host.
 */
function mirror(root: string, file: string, depth = 0): void {
  if (depth > 16) throw new Error(`too many symlinks mirroring ${file}`);
  const parts = path.resolve(file).split('/').filter(Boolean);
  let host = '/';
  for (let i = 0; i < parts.length; i++) {
    host = path.join(host, parts[i]);
    const inRoot = path.join(root, host);
    const st = fs.lstatSync(host);
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(host);
      if (!fs.existsSync(inRoot) && !isLink(inRoot)) {
        fs.mkdirSync(path.dirname(inRoot), { recursive: true, mode: 0o755 });
        fs.symlinkSync(target, inRoot);
      }
      // continue along the link's target, then the rest of the path
      const resolved = path.resolve(path.dirname(host), target);
      mirror(root, path.join(resolved, ...parts.slice(i + 1)), depth + 1);
      return;
    }
    if (st.isDirectory()) {
      fs.mkdirSync(inRoot, { recursive: true, mode: 0o755 });
    } else if (!fs.existsSync(inRoot)) {
      fs.copyFileSync(host, inRoot);
      fs.chmodSync(inRoot, st.mode & 0o555);
    }
  }
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Build (once per QEMU build and library set) or reuse the QEMU root under `baseDir`. */
export function prepareQemuRoot(qemuCommand: string, baseDir: string): QemuRoot {
  const binary = findExecutable(qemuCommand);
  if (!binary) throw qemuMissing(qemuCommand);
  const files = [
    binary,
    ...sharedLibraries(binary),
    ...FIRMWARE_DIRS.flatMap((dir) => FIRMWARE.map((f) => path.join(dir, f))).filter((f) => fs.existsSync(f)),
  ];
  const hash = createHash('sha256');
  for (const f of files) {
    const st = fs.statSync(f);
    hash.update(`${f}:${st.size}:${st.mtimeMs}\n`);
  }
  const dir = path.join(baseDir, `qemu-${hash.digest('hex').slice(0, 16)}`);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(baseDir, { recursive: true, mode: 0o755 });
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { mode: 0o755 });
    for (const f of files) mirror(tmp, f);
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // another server made the same one first
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!fs.existsSync(dir)) throw err;
    }
    // roots of an older QEMU: once nothing can still be starting from them
    const cutoffMs = Date.now() - 24 * 3600_000;
    for (const old of fs.readdirSync(baseDir)) {
      const oldDir = path.join(baseDir, old);
      if (!old.startsWith('qemu-') || oldDir === dir) continue;
      // another server's temporary root may be renamed away between the listing and the stat
      const madeMs = fs.statSync(oldDir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
      if (madeMs < cutoffMs) fs.rmSync(oldDir, { recursive: true, force: true });
    }
  }
  const entries = fs
    .readdirSync(dir)
    .map((name) => ({ name, link: isLink(path.join(dir, name)) ? fs.readlinkSync(path.join(dir, name)) : null }));
  return { dir, binary, entries };
}
