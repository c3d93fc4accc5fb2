// GET /v1/hosts (admin): the hosts sharing this database, their state, capacity and what their MicroVMs use.
import { CapsuleError, ErrorCode, Host as HostSchema, type Host, HostList } from '@capsule/protocol';
import { LIVE_STATES } from '../../store/states.js';
import type { Store } from '../../store/types.js';
import type { ApiApp } from '../app.js';
import { HostIdParam } from '../params.js';
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
  for (const [action, draining, summary] of [
    ['drain', true, 'Take no new MicroVMs on this host: placement passes it over and it admits no launch or resume'],
    ['undrain', false, 'Take new MicroVMs on this host again'],
  ] as const) {
    app.openapi(
      defineRoute(
        { auth: 'admin' },
        {
          method: 'post',
          path: `/v1/hosts/{id}/${action}`,
          summary,
          description: 'Its running MicroVMs stay where they are; a down host cannot be drained.',
          request: { params: HostIdParam },
          responses: { 200: json(HostSchema) },
        },
      ),
      async (c) => {
        const { id } = c.req.valid('param');
        const before = (await listHosts(store)).find((h) => h.id === id);
        if (!before) throw new CapsuleError(ErrorCode.NOT_FOUND, `host ${id} not found`);
        if (before.state === 'down')
          throw new CapsuleError(ErrorCode.INVALID_STATE, `cannot ${action} host ${id}: it is down`, {
            details: { state: 'down' },
          });
        const updated = await store.setHostDraining(id, draining);
        return c.json({ ...before, state: updated?.state ?? before.state }, 200);
      },
    );
  }
}
