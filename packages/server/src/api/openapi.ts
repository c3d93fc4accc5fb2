// GET /v1/openapi.json: the OpenAPI 3 document, generated from the routes themselves — each route's
// doc carries the zod schemas its handler validates requests with, so the document cannot drift.
import { zodToJsonSchema } from 'zod-to-json-schema';
import type { z } from 'zod';
import { ErrorBody } from '@capsule/protocol';
import { sendJson } from './http.js';
import type { Route } from './router.js';

const jsonSchema = (schema: z.ZodTypeAny): object => {
  const { $schema: _drop, ...rest } = zodToJsonSchema(schema, { target: 'openApi3', $refStrategy: 'none' }) as Record<string, unknown>;
  return rest;
};

function operation(route: Route): object {
  const { doc } = route;
  const pathParams = [...route.pattern.matchAll(/:([a-zA-Z]+)/g)].map(([, name]) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
  const queryParams = Object.entries(doc.query ?? {}).map(([name, description]) => ({ name, in: 'query', required: false, description, schema: { type: 'string' } }));
  const responses: Record<string, object> = {};
  for (const [status, body] of Object.entries(doc.responses)) {
    if (body === null) responses[status] = { description: 'no body' };
    else if (typeof body === 'string') responses[status] = { description: body, content: { [body]: { schema: { type: 'string', format: 'binary' } } } };
    else responses[status] = { description: 'OK', content: { 'application/json': { schema: jsonSchema(body) } } };
  }
  responses.default = { description: 'an error: a stable code with a fixed HTTP status', content: { 'application/json': { schema: jsonSchema(ErrorBody) } } };
  const requestBody =
    doc.body === undefined
      ? undefined
      : doc.body === 'binary'
        ? { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }
        : { required: true, content: { 'application/json': { schema: jsonSchema(doc.body) } } };
  return {
    summary: doc.summary,
    parameters: [...pathParams, ...queryParams],
    ...(requestBody ? { requestBody } : {}),
    responses,
    ...(route.public ? { security: [] } : {}),
  };
}

export function openApiDocument(routes: Route[], version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const path = route.pattern.replace(/:([a-zA-Z]+)/g, '{$1}');
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation(route) };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Capsule API', version, description: 'Stateful microVM sandboxes: run, exec, files, suspend, resume.' },
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'an API key: Authorization: Bearer <key>' } } },
    security: [{ apiKey: [] }],
    paths,
  };
}

/** The document route; it describes every route given, itself included. */
export function openApiRoute(routes: () => Route[], version: string): Route {
  let cached: object | null = null;
  return {
    method: 'GET',
    pattern: '/v1/openapi.json',
    public: true,
    doc: { summary: 'This OpenAPI document', responses: { 200: 'application/json' } },
    async handle({ res }) {
      cached ??= openApiDocument(routes(), version);
      sendJson(res, 200, cached);
    },
  };
}
