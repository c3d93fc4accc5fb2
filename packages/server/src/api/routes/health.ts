import type { AcceleratorDecision } from '../../vmm/accelerator.js';
import { sendJson } from '../http.js';
import type { Route } from '../router.js';

export const SERVER_VERSION = '0.1.0';

export function healthRoute(accelerator: AcceleratorDecision): Route {
  return {
    method: 'GET',
    pattern: '/healthz',
    public: true,
    async handle({ res }) {
      sendJson(res, 200, { status: 'ok', accelerator: accelerator.accelerator, acceleratorReason: accelerator.reason, version: SERVER_VERSION });
    },
  };
}
