// GET /v1/hosts (admin): the hosts sharing this database, their state, capacity and what their MicroVMs use.
import { type Host, HostList } from '@capsule/protocol';
import { LIVE_STATES } from '../../store/states.js';
import type { Store } from '../../store/types.js';
import type { ApiApp } from '../app.js';
import { defineRoute, json } from '../route.js';

export async function listHosts(store: Pick<Store, 'listHosts' | 'hostUsage'>, nowMs = Date.now()): Promise<Host[]> {
  const [hosts, usage] = await Promise.all([store.listHosts(), store.hostUsage(LIVE_STATES)]);
  return hosts.map(({ downCount: _d, ...host }) => ({
    ...host,
    // a lease that ran out is down even before a node has marked it so
    state: Date.parse(host.leaseExpiresAt) < nowMs ? 'down' : host.state,
    used: usage.get(host.id) ?? { vcpus: 0, memoryMib: 0, microvms: 0 },
  }));
}

export function hostRoutes(app: ApiApp, store: Store): void {
  app.openapi(
    defineRoute(
      { auth: 'admin' },
      {
        method: 'get',
        path: '/v1/hosts',
        summary: 'The hosts that run MicroVMs: state (ready, draining, down), capacity, use and last heartbeat',
        responses: { 200: json(HostList) },
      },
    ),
    async (c) => c.json({ hosts: await listHosts(store) }, 200),
  );
}
