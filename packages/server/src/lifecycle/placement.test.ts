// Spread placement: the ready host with a live lease and the most memory free, then the fewest VMs, then by id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostRecord, HostUsage } from '../store/hosts.js';
import { rankHosts } from './placement.js';

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
});
const used = (entries: Record<string, [number, number]>) =>
  new Map<string, HostUsage>(
    Object.entries(entries).map(([id, [memoryMib, microvms]]) => [id, { vcpus: microvms, memoryMib, microvms }]),
  );

test('the most memory free wins; then the fewest VMs; then the id', () => {
  assert.equal(pickHost([host('h1', 8192), host('h2', 16384)], used({}), NOW)?.id, 'h2');
  assert.equal(pickHost([host('h1', 8192), host('h2', 16384)], used({ h2: [10_240, 5] }), NOW)?.id, 'h1');
  assert.equal(pickHost([host('h1', 8192), host('h2', 8192)], used({ h1: [512, 2], h2: [512, 1] }), NOW)?.id, 'h2');
  assert.equal(pickHost([host('h2', 8192), host('h1', 8192)], used({}), NOW)?.id, 'h1');
});

test('draining and down hosts, full hosts, and hosts whose lease ran out, take nothing', () => {
  assert.equal(pickHost([host('h1', 1024)], used({ h1: [1024, 2] }), NOW), null);
  const hosts = [host('h1', 8192, 'draining'), host('h2', 8192, 'down'), host('h3', 65536, 'ready', -1)];
  assert.equal(pickHost(hosts, used({}), NOW), null);
  assert.equal(pickHost([...hosts, host('h4', 1024)], used({}), NOW)?.id, 'h4');
});
