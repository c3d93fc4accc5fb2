// untilIdle on real processes: a sleeping one settles at once, a spinning one never does (it gives up at
// its bound), and a process that is gone is no settled guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { processCpuMs, untilIdle } from './guest-idle.js';

function child(script: string) {
  const proc = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  return { pid: proc.pid!, stop: () => new Promise((r) => (proc.kill('SIGKILL'), proc.once('exit', r))) };
}

test('a sleeping process is idle; a spinning one is not, within the bound', async () => {
  const sleeper = child('setTimeout(() => {}, 60_000)');
  const spinner = child('for (;;) {}');
  try {
    // generous bounds: untilIdle returns as soon as the process settles, and on a host busy with other work (2 cores
    // and a test suite running VMs) a node child's start-up alone can take a second of CPU
    assert.equal(await untilIdle(sleeper.pid, { windowMs: 200, maxMs: 15_000 }), true);
    assert.equal(await untilIdle(spinner.pid, { windowMs: 200, maxMs: 1000 }), false);
    assert.ok((processCpuMs(spinner.pid) ?? 0) >= 100, 'its CPU time is counted');
  } finally {
    await Promise.all([sleeper.stop(), spinner.stop()]);
  }
  assert.equal(processCpuMs(spinner.pid), null);
  assert.equal(await untilIdle(spinner.pid, { windowMs: 100, maxMs: 500 }), false);
});
