// The guest agent over its virtio-serial link, driven directly (no REST): backpressure end to end,
// signals, info, and the link surviving heavy multiplexing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { INITIAL_WINDOW_BYTES, MAX_PAYLOAD_BYTES } from '@capsule/protocol';
import { loadConfig, RuntimeRegistry, hostLaunchOptions, Machine } from '@capsule/server/internals';
import { AGENT_PROCESS } from './helpers.js';
import { hostAccelerator } from '../support/accelerator.js';

describe('guest agent link', () => {
  let machine: Machine;
  let work: string;
  let accelerator: Awaited<ReturnType<typeof hostAccelerator>>;
  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-agent-'));
    const config = loadConfig({ dataDir: work });
    const runtimes = new RuntimeRegistry(config.cacheDir, work, config.agentBundlePath);
    runtimes.load();
    machine = await Machine.launch({
      ...hostLaunchOptions(config, runtimes.get('base')),
      vmDir: path.join(work, 'vm'),
      vcpuCount: 1,
      memoryMib: 512,
      accelerator: (accelerator = await hostAccelerator()),
      hostname: 'agent-test',
      jail: null, // the agent protocol under test; the jail has its own tests (jail.test.ts)
    });
  });
  after(async () => {
    await machine?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('info reports the guest', async () => {
    const info = await machine.agent.info();
    assert.equal(info.hostname, 'agent-test');
    assert.match(info.kernelRelease, /cloud-amd64/);
    assert.ok(info.memTotalBytes > 400 * 1024 * 1024);
  });

  test('the agent runs without the memory reducer (and JIT, under TCG) and collects its heap on request', async () => {
    // the reducer's idle-time GC, due in a snapshot, ran cold on a clone's first request (runtimes/init.sh)
    let argv = '';
    const ps = await machine.agent.exec(
      { command: ['sh', '-c', `tr '\\0' ' ' < /proc/$(pgrep -f '${AGENT_PROCESS}')/cmdline`] },
      { onStdout: (c) => void (argv += c.toString()) },
    ).result;
    assert.equal(ps.exitCode, 0);
    assert.match(argv, /--no-memory-reducer/);
    assert.match(argv, /--expose-gc/);
    // V8's interpreter only, under TCG (which translates JIT-made code anew each time it changes)
    if (accelerator === 'tcg') assert.match(argv, /--jitless/);
    else assert.doesNotMatch(argv, /--jitless/);
    await machine.agent.prepareSnapshot();
    await machine.agent.ping(); // and it serves on
  });

  test('the agent quiets the idle guest kernel: no proactive-compaction wake-ups, vmstat every 10 s', async () => {
    let out = '';
    const cat = await machine.agent.exec(
      { command: ['cat', '/proc/sys/vm/compaction_proactiveness', '/proc/sys/vm/stat_interval'] },
      { onStdout: (c) => void (out += c.toString()) },
    ).result;
    assert.equal(cat.exitCode, 0);
    assert.equal(out, '0\n10\n');
  });

  test("the clock and entropy fix-ups run in the agent's own process (its addon), not a helper", async () => {
    const read = async (script: string): Promise<string> => {
      let out = '';
      const r = await machine.agent.exec({ command: ['sh', '-c', script] }, { onStdout: (c) => void (out += c) })
        .result;
      assert.equal(r.exitCode, 0, `${script}: exit ${r.exitCode}`);
      return out.trim();
    };
    const anHourAheadMs = Date.now() + 3_600_000;
    await machine.agent.setClock(anHourAheadMs);
    const guestMs = Number(await read('date +%s%3N'));
    assert.ok(Math.abs(guestMs - anHourAheadMs) < 5000, `guest clock ${guestMs}, set to ${anHourAheadMs}`);
    await machine.agent.resumeFixups(10_000); // the clock back to now, with fresh entropy
    assert.ok(Math.abs(Number(await read('date +%s%3N')) - Date.now()) < 5000);
    // the agent's only children are the ones it runs: no long-lived helper process beside it
    const children = await read(`ps -o comm= --ppid $(pgrep -f '${AGENT_PROCESS}') | grep -v -x -e ps -e sh || true`);
    assert.equal(children, '');
    assert.match(await read('grep -c fixups.node /proc/$(pgrep -f "' + AGENT_PROCESS + '")/maps'), /^[1-9]/);
  });

  test('a stalled consumer stops a 1 GiB writer at the window: neither side buffers it', async () => {
    let received = 0;
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    const handle = machine.agent.exec(
      { command: ['sh', '-c', 'head -c 1073741824 /dev/zero'] },
      {
        onStdout: (chunk) => {
          received += chunk.length;
          return stalled;
        },
      },
    );
    await handle.pid;
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(received <= INITIAL_WINDOW_BYTES + MAX_PAYLOAD_BYTES, `received ${received} bytes while stalled`);
    // the writer is blocked on its pipe, and the agent holds at most a pipe's worth plus one chunk
    let agentRssText = '';
    const agentRss = await machine.agent.exec(
      { command: ['sh', '-c', `ps -o rss= -p $(pgrep -f '${AGENT_PROCESS}')`] },
      {
        onStdout: (c) => void (agentRssText += c.toString()),
      },
    ).result;
    assert.equal(agentRss.exitCode, 0);
    assert.ok(Number(agentRssText.trim()) < 200 * 1024, `agent RSS ${agentRssText.trim()} KiB`);
    handle.signal('SIGKILL');
    release();
    const result = await handle.result;
    assert.equal(result.signal, 'SIGKILL');
  });
  test('signals reach the process group', async () => {
    const handle = machine.agent.exec(
      { command: ['sh', '-c', 'trap "echo got-term; exit 42" TERM; while true; do sleep 0.1; done'] },
      {
        onStdout: (c) => void (out += c.toString()),
      },
    );
    let out = '';
    await handle.pid;
    await new Promise((r) => setTimeout(r, 500));
    handle.signal('SIGTERM');
    const result = await handle.result;
    assert.equal(result.exitCode, 42);
    assert.equal(out, 'got-term\n');
  });

  test('pings interleave with a bulk transfer on the same link', async () => {
    const bulk = machine.agent.exec(
      { command: ['sh', '-c', 'head -c 16777216 /dev/urandom'] },
      { onStdout: () => undefined },
    );
    const pings = await Promise.all(Array.from({ length: 20 }, () => machine.agent.ping(10_000)));
    assert.equal(pings.length, 20);
    assert.equal((await bulk.result).exitCode, 0);
  });
});
