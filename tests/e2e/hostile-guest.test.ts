// A guest that is root and hostile, in a real VM: flooding its console costs the host at most the
// console cap on disk; taking over the agent's port and flooding past its credit gets the VM cut off,
// FAILED with the reason, its QEMU gone, and the server's memory bounded.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SERIAL_LOG_MAX_BYTES } from '@capsule/server/internals';
import { qemuProcesses, useTestServer } from './helpers.js';

const MIB = 1024 * 1024;

/** Steal the agent's virtio port (pidfd_getfd), stop the agent, and flood DATA on every channel, ignoring credit. */
const FLOOD_AGENT = `
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def cmdline(pid): return open(f'/proc/{pid}/cmdline', 'rb').read()
agent = next(int(p) for p in os.listdir('/proc')
             if p.isdigit() and cmdline(p).startswith(b'/usr/bin/node') and b'agent.js' in cmdline(p))
port_fd = next(int(fd) for fd in os.listdir(f'/proc/{agent}/fd')
               if os.readlink(f'/proc/{agent}/fd/{fd}').startswith('/dev/vport'))
os.kill(agent, 19)  # SIGSTOP: the real agent no longer reads or writes
port = libc.syscall(438, os.pidfd_open(agent), port_fd, 0)  # pidfd_getfd
assert port >= 0, ctypes.get_errno()
payload = b'A' * 65536
frames = b''.join(struct.pack('>IIBBH', len(payload), channel, 1, 1, 0) + payload for channel in range(1, 32))
while True:
    view = memoryview(frames)
    while view:  # whole frames: a short write must not misalign the stream (that would be another violation)
        view = view[os.write(port, view):]
`;

describe('a hostile guest', () => {
  const server = useTestServer();

  test('a console flood keeps at most the console cap on the host', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    const vmDir = path.join(server().dataDir, 'vms', vm.id);
    // 3 MiB through the emulated UART, then a marker: the log keeps the newest bytes
    const flood = await vm.exec(
      ['sh', '-c', 'head -c 3145728 /dev/zero | tr "\\0" x > /dev/ttyS0; echo END-OF-FLOOD > /dev/ttyS0'],
      { timeoutMs: 600_000 },
    );
    assert.equal(flood.exitCode, 0, flood.stderr);
    await sleep(500);
    const kept = ['serial.log', 'serial.log.1'].map((f) => path.join(vmDir, f)).filter((f) => fs.existsSync(f));
    const keptBytes = kept.reduce((n, f) => n + fs.statSync(f).size, 0);
    assert.ok(keptBytes <= SERIAL_LOG_MAX_BYTES, `${keptBytes} bytes of console kept`);
    assert.ok(keptBytes >= SERIAL_LOG_MAX_BYTES / 2, 'the newest half at least');
    assert.deepEqual(
      fs.readdirSync(path.join(vmDir, 'run')).filter((f) => f.includes('serial') && !f.endsWith('.sock')),
      [],
      'nothing of the console in the jail',
    );
    assert.match(await vm.logs(), /END-OF-FLOOD/);
    assert.equal((await vm.exec(['echo', 'alive'])).stdout, 'alive\n');
    await vm.terminate();
  });

  test('a guest flooding the agent link past its credit is cut off: FAILED with the reason, QEMU gone', async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'python' });
    const rssBefore = process.memoryUsage().rss;
    await vm.files.write('/tmp/flood.py', FLOOD_AGENT);
    // the exec's output is never read: the host withholds credit, and the flood runs straight past it
    const controller = new AbortController();
    const response = fetch(`${server().url}/v1/microvms/${vm.id}/exec`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server().adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: ['python3', '/tmp/flood.py'] }),
      signal: controller.signal,
    }).catch(() => null);
    let state = '';
    for (let i = 0; i < 120 && state !== 'FAILED'; i++) {
      await sleep(500);
      state = (await vm.refresh()).state;
    }
    controller.abort();
    await response;
    assert.equal(state, 'FAILED');
    assert.match(vm.info.failureReason ?? '', /broke the agent protocol.*past the credit granted/s);
    assert.deepEqual(qemuProcesses(`/vms/${vm.id}/`), [], 'its QEMU is gone');
    const grownMib = (process.memoryUsage().rss - rssBefore) / MIB;
    console.log(`server RSS grew ${grownMib.toFixed(1)} MiB under the flooding agent`);
    assert.ok(grownMib < 128, `the server grew by ${grownMib.toFixed(1)} MiB`);
    assert.equal((await server().api('GET', '/healthz')).status, 200);
  });
});
