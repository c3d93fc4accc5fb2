// GET /v1/openapi.json: the OpenAPI 3.1 document, generated from the route table itself (each route's
// zod schemas are the ones the framework validates with), so the document cannot drift. A copy is
// committed (docs/openapi.json; the schemas with a meta id in protocol are named components) and a test compares them,
// so a contract change is a visible diff.
import type { ApiApp } from './app.js';
import { defineRoute, raw } from './route.js';

/** The document route; it describes every route registered, itself included. */
export function openApiRoute(app: ApiApp, version: string): void {
  let cached: object | null = null;
  app.openapi(
    defineRoute(
      { auth: 'public' },
      {
        method: 'get',
        path: '/v1/openapi.json',
        summary: 'This OpenAPI document',
        responses: { 200: raw('application/json', 'OpenAPI 3.1') },
      },
    ),
    (c) => {
      cached ??= openApiDocument(app, version);
      return c.json(cached, 200);
    },
  );
}

/** The OpenAPI 3.1 document of every route registered on `app`. */
export function openApiDocument(app: ApiApp, version: string): object {
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'an API key: Authorization: Bearer <key>',
  });
  return app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Capsule API',
      version,
      description: 'Stateful microVM sandboxes: run, exec, files, suspend, resume.',
    },
    security: [{ apiKey: [] }],
  });
}
