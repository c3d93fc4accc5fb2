// Built-in runtimes, as built by scripts/build-runtime.sh into <cacheDir>/runtimes/NAME-HASH. The
// guest agent is appended to each runtime's initramfs here, so an agent change never rebuilds a rootfs.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { newcArchive, S_IFDIR, S_IFREG } from './cpio.js';

export interface Runtime {
  name: string;
  hash: string;
  kernelRelease: string;
  nodeVersion: string;
  kernelPath: string;
  /** Read-only base disk; VMs get a qcow2 overlay on it. */
  rootfsPath: string;
  /** initramfs with this server's guest agent inside. */
  initrdPath: string;
  /** When this build of the runtime was made (ISO). */
  builtAt: string;
}

interface Manifest {
  name: string;
  hash: string;
  kernelRelease: string;
  nodeVersion: string;
  builtAt: string;
}

export class RuntimeRegistry {
  private readonly runtimes = new Map<string, Runtime>();

  constructor(
    private readonly cacheDir: string,
    private readonly dataDir: string,
    private readonly agentBundlePath: string,
  ) {}

  /** Scan the cache; for each name keep the newest build. Assemble initramfs images with the current agent. */
  load(): void {
    const dir = path.join(this.cacheDir, 'runtimes');
    if (!fs.existsSync(this.agentBundlePath)) {
      throw new CapsuleError(
        ErrorCode.INTERNAL,
        `guest agent bundle missing at ${this.agentBundlePath}: run the setup script`,
      );
    }
    const agent = fs.readFileSync(this.agentBundlePath);
    // the agent's fix-up addon, built beside the bundle (scripts/build.mjs)
    const addonPath = path.join(path.dirname(this.agentBundlePath), 'fixups.node');
    if (!fs.existsSync(addonPath)) {
      throw new CapsuleError(ErrorCode.INTERNAL, `guest agent addon missing at ${addonPath}: run the setup script`);
    }
    const addon = fs.readFileSync(addonPath);
    const agentHash = createHash('sha256').update(agent).update(addon).digest('hex').slice(0, 12);
    const agentArchive = newcArchive([
      { name: 'capsule', mode: S_IFDIR | 0o755 },
      { name: 'capsule/agent.js', mode: S_IFREG | 0o644, data: agent },
      { name: 'capsule/fixups.node', mode: S_IFREG | 0o755, data: addon },
    ]);
    const newest = new Map<string, { manifest: Manifest; dir: string }>();
    for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const manifestPath = path.join(dir, entry, 'manifest.json');
      if (!fs.existsSync(manifestPath)) continue;
      const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Manifest;
      const seen = newest.get(manifest.name);
      if (!seen || seen.manifest.builtAt < manifest.builtAt)
        newest.set(manifest.name, { manifest, dir: path.join(dir, entry) });
    }
    const initrdDir = path.join(this.dataDir, 'initrd');
    fs.mkdirSync(initrdDir, { recursive: true });
    for (const { manifest, dir: runtimeDir } of newest.values()) {
      const initrdPath = path.join(initrdDir, `${manifest.name}-${manifest.hash}-${agentHash}.img`);
      if (!fs.existsSync(initrdPath)) {
        const tmp = `${initrdPath}.tmp-${process.pid}`;
        fs.writeFileSync(
          tmp,
          Buffer.concat([fs.readFileSync(path.join(runtimeDir, 'initrd-base.cpio')), agentArchive]),
        );
        fs.renameSync(tmp, initrdPath);
      }
      this.runtimes.set(manifest.name, {
        name: manifest.name,
        hash: manifest.hash,
        kernelRelease: manifest.kernelRelease,
        nodeVersion: manifest.nodeVersion,
        kernelPath: path.join(runtimeDir, 'vmlinuz'),
        rootfsPath: path.join(runtimeDir, 'rootfs.ext4'),
        initrdPath,
        builtAt: manifest.builtAt,
      });
    }
  }

  get(name: string): Runtime {
    const runtime = this.runtimes.get(name);
    if (!runtime) {
      const known = [...this.runtimes.keys()].join(', ') || 'none built — run the setup script';
      throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `image "${name}" not found (built-in runtimes: ${known})`);
    }
    return runtime;
  }

  list(): Runtime[] {
    return [...this.runtimes.values()];
  }
}
