// Each built-in runtime boots with its own tools, the requested size, and the host's clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useTestServer } from './helpers.js';

describe('built-in runtimes', () => {
  const server = useTestServer();

  test("python carries Debian's flask and pytest (PyPI may be unreachable)", async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'python' });
    try {
      const result = await vm.exec([
        'python3',
        '-c',
        'import flask, pytest, venv; print(flask.__name__, pytest.__version__.split(".")[0])',
      ]);
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout, /^flask \d+\n$/);
      assert.equal((await vm.exec(['python3', '-m', 'pip', '--version'])).exitCode, 0);
    } finally {
      await vm.terminate();
    }
  });

  test("node has npm; vCPUs and memory are what was asked for; the clock is the host's", async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'node', vcpuCount: 2, memoryMib: 768 });
    try {
      assert.deepEqual([vm.info.vcpuCount, vm.info.memoryMib], [2, 768]);
      assert.equal((await vm.exec(['npm', '--version'])).exitCode, 0);
      assert.equal((await vm.exec(['nproc'])).stdout.trim(), '2');
      const memKib = Number(/MemTotal:\s+(\d+)/.exec((await vm.exec(['cat', '/proc/meminfo'])).stdout)?.[1]);
      assert.ok(memKib > 600 * 1024 && memKib <= 768 * 1024, `MemTotal ${memKib} kB`);
      const guestSeconds = Number((await vm.exec(['date', '+%s'])).stdout.trim());
      assert.ok(
        Math.abs(guestSeconds - Date.now() / 1000) < 10,
        `guest clock ${guestSeconds} vs host ${Date.now() / 1000}`,
      );
    } finally {
      await vm.terminate();
    }
  });

  test("base is minimal: no python, but the agent's node and a working shell", async () => {
    const vm = await server().capsule.microvms.run({ imageName: 'base' });
    try {
      assert.equal((await vm.exec('command -v python3 || echo none')).stdout.trim(), 'none');
      assert.match((await vm.exec(['node', '--version'])).stdout, /^v\d+\./);
      // an 8 GiB root disk like Lambda MicroVMs', free space a user sees in df (sparse: costs nothing unwritten)
      const [sizeBytes, availBytes] = (await vm.exec(['sh', '-c', 'df -B1 --output=size,avail / | tail -1'])).stdout
        .trim()
        .split(/\s+/)
        .map(Number);
      assert.ok(sizeBytes >= 7.5 * 2 ** 30, `root filesystem of ${sizeBytes} bytes`);
      assert.ok(availBytes >= 7 * 2 ** 30, `${availBytes} bytes free`);
    } finally {
      await vm.terminate();
    }
  });
});
