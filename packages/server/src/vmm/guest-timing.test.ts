import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostTscKhz } from './guest-timing.js';
import { kernelCmdline } from './qemu-args.js';

test('host TSC kHz comes from cpuinfo', () => {
  assert.equal(hostTscKhz('processor\t: 0\ncpu MHz\t\t: 2596.122\n'), 2596122);
  assert.equal(hostTscKhz('processor\t: 0\n'), null);
});

test('TCG guests get the timer hints; KVM guests do not', () => {
  assert.match(
    kernelCmdline({ hostname: 'h', accelerator: 'tcg' }),
    /lapic_timer_period=4000000 no_timer_check tsc=reliable/,
  );
  assert.doesNotMatch(kernelCmdline({ hostname: 'h', accelerator: 'kvm' }), /tsc_early_khz/);
  assert.match(
    kernelCmdline({ hostname: 'h', accelerator: 'kvm', extraKernelArgs: 'loglevel=7' }),
    /capsule\.hostname=h loglevel=7$/,
  );
});
