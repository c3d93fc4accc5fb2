// /healthz (public) and /metrics (admin key).
import { RELEASE_VERSION, Health, MicroVMState, type MicroVMUsage } from '@capsule/protocol';
import type { SystemVms } from '../../system-vms.js';
import type { Store } from '../../store/types.js';
import type { AcceleratorDecision } from '../../vmm/accelerator.js';
import type { ApiApp } from '../app.js';
import type { Metrics } from '../../observability/metrics.js';
import { defineRoute, json, raw } from '../route.js';

/** The version /healthz and the OpenAPI document say. */
export const SERVER_VERSION = RELEASE_VERSION;

export function healthRoute(app: ApiApp, accelerator: AcceleratorDecision): void {
  app.openapi(
    defineRoute(
      { auth: 'public' },
      {
        method: 'get',
        path: '/healthz',
        summary: 'Liveness, and which accelerator VMs run on',
        responses: { 200: json(Health) },
      },
    ),
    (c) =>
      c.json(
        {
          status: 'ok' as const,
          accelerator: accelerator.accelerator,
          acceleratorReason: accelerator.reason,
          version: SERVER_VERSION,
        },
        200,
      ),
  );
}

/** Prometheus metrics; the admin key only (counts span every tenant). */
export function metricsRoute(
  app: ApiApp,
  metrics: Metrics,
  store: Store,
  usageByTenant: () => ReadonlyMap<string, MicroVMUsage>,
  system: SystemVms | null = null,
): void {
  app.openapi(
    defineRoute(
      { auth: 'admin' },
      {
        method: 'get',
        path: '/metrics',
        summary: 'Prometheus metrics (admin key)',
        responses: { 200: raw('text/plain; version=0.0.4', 'the exposition') },
      },
    ),
    async (c) => {
      const body = await metrics.render(
        await store.countMicroVMsByState(),
        MicroVMState.options,
        usageByTenant(),
        system?.usage() ?? null,
      );
      return c.body(body, 200, { 'content-type': metrics.contentType });
    },
  );
}
