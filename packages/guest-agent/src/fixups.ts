// Clock, entropy and MAC fix-ups after a restore, done in the agent's own process by a small Node-API addon
// (../native/fixups.c, copied beside agent.js by the initramfs): Node can neither ioctl nor clock_settime.
// The addon is loaded at agent start-up, so every snapshot carries it loaded: a fix-up is then a few syscalls.
// (It replaced a long-lived perl helper whose interpreter ran cold after every restore under TCG: ~65 ms.)
import fs from 'node:fs';
import path from 'node:path';

interface FixupsAddon {
  setClock(epochMs: number): void;
  addEntropy(bytes: Buffer): void;
  setMacAddress(iface: string, mac: Buffer): void;
}

let addon: FixupsAddon | null = null;
let loadError: string | null = null;

/** Load the addon now (agent start-up), so snapshots carry it. A failure is returned, and kept: every fix-up
 * request then answers it. */
export function loadFixups(addonPath = path.join(path.dirname(process.argv[1] ?? '.'), 'fixups.node')): string | null {
  if (addon) return null;
  try {
    const module = { exports: {} as FixupsAddon };
    process.dlopen(module, addonPath);
    addon = module.exports;
    loadError = null;
  } catch (err) {
    loadError = `fix-up addon ${addonPath} did not load: ${(err as Error).message}`;
  }
  return loadError;
}

function loaded(): FixupsAddon {
  if (!addon) loadFixups();
  if (!addon) throw new Error(loadError ?? 'fix-up addon not loaded');
  return addon;
}

/** Set the clock; with `entropyHex`, mix that in (credited) and reseed the CRNG first. */
export function setClock(epochMs: number, entropyHex: string | null): void {
  const fixups = loaded();
  if (entropyHex !== null) fixups.addEntropy(Buffer.from(entropyHex, 'hex'));
  fixups.setClock(epochMs);
}

/** Entropy first (nothing random should be drawn from the snapshot's shared RNG state after it), the clock,
 * then eth0's MAC when the VM has a NIC. */
export function restoreFixups(entropyHex: string, epochMs: number, macAddress: string): void {
  setClock(epochMs, entropyHex);
  if (fs.existsSync('/sys/class/net/eth0')) {
    loaded().setMacAddress('eth0', Buffer.from(macAddress.replaceAll(':', ''), 'hex'));
  }
}
