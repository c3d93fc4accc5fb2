// `capsule hosts ls`: one line per host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostLine } from './hosts.js';

test('a host line: state, vCPUs and memory used of capacity, VMs, accelerator, heartbeat age, URL', () => {
  const line = hostLine(
    {
      id: 'h1',
      state: 'ready',
      advertiseUrl: 'http://10.0.0.11:7071',
      capacity: { vcpus: 16, memoryMib: 65536, diskMib: 100_000, accelerator: 'kvm', qemuVersion: '10.0.2' },
      used: { vcpus: 2, memoryMib: 1024, microvms: 3 },
      registeredAt: '2026-12-04T09:00:00.000Z',
      heartbeatAt: '2026-12-04T10:00:00.000Z',
      leaseExpiresAt: '2026-12-04T10:00:15.000Z',
    },
    Date.parse('2026-12-04T10:00:02.400Z'),
  );
  assert.equal(line, 'h1  ready  2/16 vCPU  1.0/64 GiB  3 VMs  kvm  last seen 2 s ago  http://10.0.0.11:7071');
});
