// /healthz (public) and /metrics (admin key).
import { CapsuleError, ErrorCode, Health, MicroVMState, type MicroVMUsage } from '@capsule/protocol';
import type { SystemVms } from '../../system-vms.js';
import type { Store } from '../../store/types.js';
import type { Metrics } from '../metrics.js';
import type { AcceleratorDecision } from '../../vmm/accelerator.js';
import { sendJson } from '../http.js';
import type { Route } from '../router.js';

export const SERVER_VERSION = '0.1.0';

export function healthRoute(accelerator: AcceleratorDecision): Route {
  return {
    method: 'GET',
    pattern: '/healthz',
    public: true,
    doc: { summary: 'Liveness, and which accelerator VMs run on', responses: { 200: Health } },
    async handle({ res }) {
      sendJson(res, 200, { status: 'ok', accelerator: accelerator.accelerator, acceleratorReason: accelerator.reason, version: SERVER_VERSION });
    },
  };
}

/** Prometheus metrics; the admin key only (counts span every tenant). */
export function metricsRoute(metrics: Metrics, store: Store, usageByTenant: () => ReadonlyMap<string, MicroVMUsage>, system: SystemVms | null = null): Route {
  return {
    method: 'GET',
    pattern: '/metrics',
    doc: { summary: 'Prometheus metrics (admin key)', responses: { 200: 'text/plain; version=0.0.4' } },
    async handle({ res, isAdmin }) {
      if (!isAdmin) throw new CapsuleError(ErrorCode.FORBIDDEN, 'metrics need the admin key');
      const body = await metrics.render(await store.countMicroVMsByState(), MicroVMState.options, usageByTenant(), system?.usage() ?? null);
      res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body) }).end(body);
    },
  };
}
