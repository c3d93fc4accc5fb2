import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseAccelerator, type AcceleratorProbeEnv } from './accelerator.js';

const env = (over: Partial<AcceleratorProbeEnv>): AcceleratorProbeEnv => ({
  cpuinfo: () => 'flags\t\t: fpu vme vmx sse\n',
  kvmUsable: () => true,
  probeBoot: async () => undefined,
  ...over,
});

test('KVM needs vmx/svm, a usable /dev/kvm and a successful probe boot', async () => {
  assert.equal((await chooseAccelerator('auto', env({}))).accelerator, 'kvm');
  const noFlag = await chooseAccelerator('auto', env({ cpuinfo: () => 'flags\t\t: fpu vme sse\n' }));
  assert.equal(noFlag.accelerator, 'tcg');
  assert.match(noFlag.reason, /neither vmx nor svm/);
  assert.equal((await chooseAccelerator('auto', env({ kvmUsable: () => false }))).accelerator, 'tcg');
  const probeFail = await chooseAccelerator(
    'auto',
    env({
      probeBoot: async () => {
        throw new Error('agent never answered');
      },
    }),
  );
  assert.equal(probeFail.accelerator, 'tcg');
  assert.match(probeFail.reason, /probe boot failed \(agent never answered\)/);
});

test('configuration overrides detection', async () => {
  let probed = false;
  const decision = await chooseAccelerator('tcg', env({ probeBoot: async () => void (probed = true) }));
  assert.deepEqual([decision.accelerator, probed], ['tcg', false]);
  assert.equal((await chooseAccelerator('kvm', env({ cpuinfo: () => '' }))).accelerator, 'kvm');
});
