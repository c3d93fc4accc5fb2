// An app that accepts its suspend and terminate hooks and never answers them: terminate still ends
// within the hook's deadline (QEMU gone), and the policy sweeper is not held up for other VMs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MicroVM } from '@capsule/sdk';
import { zipOf } from '../support/zip-writer.js';
import { qemuProcesses, withTestServer } from './helpers.js';

// answers `ready` and `run` (so it launches), then hangs `suspend` and `terminate` for good, holding the connection
// open
const APP = `require('http').createServer((req, res) => {
  if (req.url === '/capsule/v1/ready' || req.url === '/capsule/v1/run') return res.end('ok');
  require('fs').appendFileSync('/tmp/hung', req.url + '\\n');
}).listen(9000, '127.0.0.1');
`;
// long enough that a sweeper waiting on the hung VM would visibly delay the idle one
const HOOK_TIMEOUT_SECONDS = 30;
const CAPSULE_JSON = { runtime: 'base', start: ['node', 'hooks.js'], hooks: { timeoutSeconds: HOOK_TIMEOUT_SECONDS } };

async function waitForState(vm: MicroVM, state: string, withinMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < withinMs) {
    if ((await vm.refresh()).state === state) return Date.now() - started;
    await sleep(200);
  }
  assert.fail(`${vm.id} is ${vm.state}, not ${state}, after ${withinMs} ms`);
}

test(
  'hung hooks: terminate ends at the hook deadline with QEMU gone, and a parallel idle VM suspends on ' + 'time',
  async () => {
    await withTestServer({}, async (server) => {
      const { capsule } = server;
      const created = await capsule.images.create('hung-hooks', {
        zip: zipOf([
          { name: 'capsule.json', data: JSON.stringify(CAPSULE_JSON) },
          { name: 'hooks.js', data: APP },
        ]),
      });
      const built = await capsule.images.waitUntilBuilt('hung-hooks', created.version, { timeoutMs: 10 * 60_000 });
      assert.equal(built.state, 'SUCCESSFUL', built.failureReason ?? '');

      const [hung, idle] = await Promise.all([
        capsule.microvms.run({ imageName: 'hung-hooks', maximumDurationSeconds: 5 }),
        capsule.microvms.run({ imageName: 'base', idlePolicy: { maxIdleDurationSeconds: 5 } }),
      ]);
      const idleSince = Date.now();

      // an explicit terminate of another hung VM returns once its hook's deadline has passed
      const other = await capsule.microvms.run({ imageName: 'hung-hooks' });
      const terminateStarted = Date.now();
      await other.terminate();
      const terminateMs = Date.now() - terminateStarted;
      assert.equal(other.state, 'TERMINATED');
      assert.ok(
        terminateMs < HOOK_TIMEOUT_SECONDS * 1000 + 15_000,
        `terminate took ${terminateMs} ms with a ${HOOK_TIMEOUT_SECONDS} s hook deadline`,
      );
      assert.deepEqual(qemuProcesses(`/vms/${other.id}/`), [], 'its QEMU is gone');
      console.log(`terminate with a hung hook: ${terminateMs} ms (hook deadline ${HOOK_TIMEOUT_SECONDS * 1000} ms)`);

      // the sweeper terminates the hung VM at its maximum duration…
      await waitForState(hung, 'TERMINATED', 60_000);
      assert.deepEqual(qemuProcesses(`/vms/${hung.id}/`), [], 'its QEMU is gone');
      const hungLifeMs = Date.parse(hung.info.terminatedAt!) - Date.parse(hung.info.startedAt!);
      assert.ok(hungLifeMs < (5 + HOOK_TIMEOUT_SECONDS) * 1000 + 15_000, `the 5 s VM lived ${hungLifeMs} ms`);
      // …and suspended the idle one meanwhile (5 s idle + a sweep + a suspend), not after the hung hook
      await waitForState(idle, 'SUSPENDED', 60_000);
      const idleToSuspendedMs = Date.parse(idle.info.suspendedAt!) - idleSince;
      assert.ok(
        idleToSuspendedMs < (5 + HOOK_TIMEOUT_SECONDS) * 1000 - 10_000,
        `the idle VM suspended ${idleToSuspendedMs} ms after its last activity`,
      );
      console.log(
        `5 s-idle VM suspended ${idleToSuspendedMs} ms after launch; the hung 5 s VM was terminated after ` +
          `${hungLifeMs} ms`,
      );
      await idle.terminate();
    });
  },
);
