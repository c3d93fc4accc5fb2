// GET /v1/hosts' view: a lease that ran out reads as down even before a node has marked it so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostRecord, HostUsage } from '../../store/hosts.js';
import { listHosts } from './hosts.js';

const host = (id: string, leaseExpiresAt: string, state: HostRecord['state'] = 'ready'): HostRecord => ({
  id,
  state,
  advertiseUrl: `http://${id}:7071`,
  capacity: { vcpus: 16, memoryMib: 65536, diskMib: 100_000, accelerator: 'kvm', qemuVersion: '10.0.2' },
  registeredAt: '2026-12-04T10:00:00.000Z',
  heartbeatAt: '2026-12-04T10:00:00.000Z',
  leaseExpiresAt,
  downCount: 0,
  ready: [],
});

test('hosts with their use; an expired lease is down; the down count stays inside', async () => {
  const now = Date.parse('2026-12-04T10:00:10.000Z');
  const store = {
    listHosts: async () => [
      host('h1', '2026-12-04T10:00:15.000Z'),
      host('h2', '2026-12-04T10:00:05.000Z'),
      host('h3', '2026-12-04T10:00:15.000Z', 'draining'),
    ],
    hostUsage: async () => new Map<string, HostUsage>([['h1', { vcpus: 3, memoryMib: 1536, microvms: 2 }]]),
  };
  const hosts = await listHosts(store, now);
  assert.deepEqual(
    hosts.map((h) => [h.id, h.state, h.used]),
    [
      ['h1', 'ready', { vcpus: 3, memoryMib: 1536, microvms: 2 }],
      ['h2', 'down', { vcpus: 0, memoryMib: 0, microvms: 0 }],
      ['h3', 'draining', { vcpus: 0, memoryMib: 0, microvms: 0 }],
    ],
  );
  assert.equal('downCount' in hosts[0], false);
});
