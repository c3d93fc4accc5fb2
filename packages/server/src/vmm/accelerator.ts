// Accelerator choice: KVM only when the CPU advertises vmx/svm, /dev/kvm opens read-write, and a probe
// VM actually boots to its agent under KVM (a paravirtual /dev/kvm can fail all three ways). Else TCG.
import fs from 'node:fs';
import type { AcceleratorChoice } from '../config.js';
import type { Accelerator } from './qemu-args.js';

export interface AcceleratorDecision {
  accelerator: Accelerator;
  reason: string;
}

export interface AcceleratorProbeEnv {
  cpuinfo(): string;
  kvmUsable(): boolean;
  /** Boot a throwaway VM under KVM; resolve if its agent answered. */
  probeBoot(): Promise<void>;
}

export const hostProbeEnv = (probeBoot: () => Promise<void>): AcceleratorProbeEnv => ({
  cpuinfo: () => fs.readFileSync('/proc/cpuinfo', 'utf8'),
  kvmUsable: () => {
    try {
      fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
  probeBoot,
});

export async function chooseAccelerator(
  choice: AcceleratorChoice,
  env: AcceleratorProbeEnv,
): Promise<AcceleratorDecision> {
  if (choice !== 'auto') return { accelerator: choice, reason: `set by configuration (CAPSULE_ACCELERATOR=${choice})` };
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(env.cpuinfo())) {
    return { accelerator: 'tcg', reason: 'cpuinfo shows neither vmx nor svm: no hardware virtualization, using TCG' };
  }
  if (!env.kvmUsable())
    return { accelerator: 'tcg', reason: '/dev/kvm is missing or not read-write for this user, using TCG' };
  try {
    await env.probeBoot();
    return { accelerator: 'kvm', reason: 'vmx/svm present and a KVM probe VM booted to its agent' };
  } catch (err) {
    return {
      accelerator: 'tcg',
      reason: `KVM probe boot failed (${(err as Error).message.split('\n')[0]}), using TCG`,
    };
  }
}
