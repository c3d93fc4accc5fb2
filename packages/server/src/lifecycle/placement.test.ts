// Placement: the ready host with a live lease that has the launch ready (a warm clone, else a cached snapshot); then
// spread (the most memory free) or packed (the least that has any); then the fewest VMs, then by id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostRecord, HostUsage } from '../store/hosts.js';
import { launchKeysOf, rankHosts } from './placement.js';

const pickHost = (...args: Parameters<typeof rankHosts>) => rankHosts(...args)[0] ?? null;

const NOW = Date.parse('2026-12-04T10:00:00.000Z');
const host = (
  id: string,
  memoryMib: number,
  state: HostRecord['state'] = 'ready',
  leaseLeftMs = 10_000,
): HostRecord => ({
  id,
  state,
  advertiseUrl: `http://${id}:7070`,
  capacity: { vcpus: 8, memoryMib, diskMib: 100_000, accelerator: 'kvm', qemuVersion: '10.0.2' },
  registeredAt: '2026-12-04T09:00:00.000Z',
  heartbeatAt: '2026-12-04T09:59:55.000Z',
  leaseExpiresAt: new Date(NOW + leaseLeftMs).toISOString(),
  downCount: 0,
  ready: [],
});
const used = (entries: Record<string, [number, number]>) =>
  new Map<string, HostUsage>(
    Object.entries(entries).map(([id, [memoryMib, microvms]]) => [id, { vcpus: microvms, memoryMib, microvms }]),
  );

test('the most memory free wins; then the fewest VMs; then the id', () => {
  assert.equal(pickHost([host('h1', 8192), host('h2', 16384)], used({}), { nowMs: NOW })?.id, 'h2');
  assert.equal(pickHost([host('h1', 8192), host('h2', 16384)], used({ h2: [10_240, 5] }), { nowMs: NOW })?.id, 'h1');
  assert.equal(
    pickHost([host('h1', 8192), host('h2', 8192)], used({ h1: [512, 2], h2: [512, 1] }), { nowMs: NOW })?.id,
    'h2',
  );
  assert.equal(pickHost([host('h2', 8192), host('h1', 8192)], used({}), { nowMs: NOW })?.id, 'h1');
});

test('draining and down hosts, full hosts, and hosts whose lease ran out, take nothing', () => {
  assert.equal(pickHost([host('h1', 1024)], used({ h1: [1024, 2] }), { nowMs: NOW }), null);
  const hosts = [host('h1', 8192, 'draining'), host('h2', 8192, 'down'), host('h3', 65536, 'ready', -1)];
  assert.equal(pickHost(hosts, used({}), { nowMs: NOW }), null);
  assert.equal(pickHost([...hosts, host('h4', 1024)], used({}), { nowMs: NOW })?.id, 'h4');
});

test('packed: the host with the least memory free that has any', () => {
  const hosts = [host('h1', 8192), host('h2', 16384), host('h3', 4096)];
  const pack = { nowMs: NOW, strategy: 'pack' } as const;
  assert.deepEqual(
    rankHosts(hosts, used({ h3: [4096, 4] }), pack).map((h) => h.id),
    ['h1', 'h2'],
    'h3 is full',
  );
  assert.equal(pickHost(hosts, used({ h2: [14_336, 3] }), pack)?.id, 'h2', '2 GiB free beats 4 and 8');
});

test("a host with the launch's warm clone comes first, then one with its snapshot cached; then by room", () => {
  const warm = { ...host('h1', 4096), ready: ['warm:acme/app', 'cached:acme/app'] };
  const cached = { ...host('h2', 8192), ready: ['cached:acme/app'] };
  const neither = host('h3', 16384);
  const want = launchKeysOf('acme', 'app');
  const rank = (hosts: HostRecord[], wanted: readonly string[]) =>
    rankHosts(hosts, used({}), { nowMs: NOW, want: wanted }).map((h) => h.id);
  assert.deepEqual(rank([neither, cached, warm], want), ['h1', 'h2', 'h3']);
  assert.deepEqual(rank([neither, cached], want), ['h2', 'h3']);
  assert.deepEqual(rank([neither, cached, warm], launchKeysOf('other', 'app')), ['h3', 'h2', 'h1'], 'not its image');
  assert.deepEqual(rank([neither, cached, warm], []), ['h3', 'h2', 'h1']);
  // a runtime's warm clone, by its name
  const warmBase = { ...host('h4', 2048), ready: ['warm:base'] };
  assert.equal(rank([neither, warmBase], launchKeysOf('acme', 'base'))[0], 'h4');
  // ready but full: passed over
  assert.deepEqual(
    rankHosts([warm, neither], used({ h1: [4096, 8] }), { nowMs: NOW, want }).map((h) => h.id),
    ['h3'],
  );
});
