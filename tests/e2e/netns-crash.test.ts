// A server killed (SIGKILL) while its pool of network namespaces refills, at random points of making one: every
// namespace it left is known to be its own (an owner file, written before the namespace is made), so its next start
// removes them all at once, and no namespace is ever left that nothing would remove.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createLogger, EgressLogs, VmNetworks } from '@capsule/server/internals';
import { slotOfNetns } from '../../packages/server/src/network/addressing.js';
import { listNamespaces } from '../../packages/server/src/network/netns.js';
import { prng } from '../support/prng.js';
import { until } from '../support/until.js';
import { networkNamespaces, removeNetworkNamespaces } from './helpers.js';

const POOL = '10.213.64.0/27'; // 8 slots, used by no other test
const POOL_SIZE = 4;
const ROUNDS = 8;
const CHILD = path.resolve(import.meta.dirname, '../support/netns-pool-child.ts');

const ofPool = (): string[] => listNamespaces().filter((name) => slotOfNetns(POOL, name) !== null);

test('a server killed mid-refill leaves only namespaces it owns; its next start removes every one', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-netns-crash-'));
  t.after(() => {
    removeNetworkNamespaces(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  // left by an earlier run that was itself killed
  for (const name of ofPool()) {
    spawnSync('ip', ['link', 'del', `cvh${name.slice('capsule-'.length)}`]);
    spawnSync('ip', ['netns', 'del', name]);
  }
  const seed = Number(process.env.NETNS_CRASH_SEED ?? Date.now() % 100_000);
  const random = prng(seed);
  for (let round = 0; round < ROUNDS; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir, POOL, String(POOL_SIZE)], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    t.after(() => child.kill('SIGKILL'));
    await once(child.stdout, 'data'); // "init": its sweep and refill start now
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 1500)));
    child.kill('SIGKILL');
    await once(child, 'exit');
    // an `ip` it ran may finish after it died
    await new Promise((resolve) => setTimeout(resolve, 300));
    const owned = new Set(networkNamespaces(dataDir).map((n) => n.netns));
    const unowned = ofPool().filter((name) => !owned.has(name));
    assert.deepEqual(unowned, [], `round ${round} (seed ${seed}): namespaces no server would know to remove`);
  }
  // its next start removes what the killed ones left, then makes its own pool; a stop removes that
  const networks = new VmNetworks(
    { pool: POOL, poolSize: 2, privateAllow: [], upstreams: [], dataDir },
    new EgressLogs(path.join(dataDir, 'egress')),
    createLogger(process.stderr, false),
  );
  await networks.init(new Map());
  await until('its own pool of 2', async () => ofPool().length === 2 && networkNamespaces(dataDir).length === 2);
  await networks.close();
  assert.deepEqual(ofPool(), []);
  assert.deepEqual(networkNamespaces(dataDir), []);
});
