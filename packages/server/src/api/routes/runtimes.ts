// GET /v1/runtimes: the built-in runtimes (base, python, node), which every tenant may launch by name.
import { RuntimeList } from '@capsule/protocol';
import type { RuntimeRegistry } from '../../runtimes/registry.js';
import type { ApiApp } from '../app.js';
import { defineRoute, json } from '../route.js';

export function runtimeRoutes(app: ApiApp, runtimes: Pick<RuntimeRegistry, 'list'>): void {
  app.openapi(
    defineRoute(
      { auth: 'tenant' },
      {
        method: 'get',
        path: '/v1/runtimes',
        summary: 'The built-in runtimes, launchable by name like an image',
        responses: { 200: json(RuntimeList) },
      },
    ),
    (c) =>
      c.json(
        {
          runtimes: runtimes
            .list()
            .map(({ name, kernelRelease, nodeVersion, builtAt }) => ({ name, kernelRelease, nodeVersion, builtAt })),
        },
        200,
      ),
  );
}
