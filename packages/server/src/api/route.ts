// How a route is declared: its params, query, body and responses as zod schemas (validated by the
// framework, and the same objects the OpenAPI document is generated from), and its auth level.
// `defineRoute` turns the auth level into the route's first middleware and a JSON body into a bounded
// read, so no handler authenticates, checks the admin bit or reads a body itself.
import type { Duplex } from 'node:stream';
import type { HttpBindings } from '@hono/node-server';
import { createRoute, type RouteConfig } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { CapsuleError, ErrorBody, ErrorCode } from '@capsule/protocol';
import type { Caller } from './auth.js';
import { readBody } from './http.js';

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/** Who may call a route: anyone, any valid key (its tenant's resources), or the admin key. */
type AuthLevel = 'public' | 'tenant' | 'admin';

/** A WebSocket upgrade being routed: the socket is the handler's to take. */
export interface Upgrade {
  socket: Duplex;
  head: Buffer;
  /** Set by the handler that took the socket. */
  taken: boolean;
}

export interface ApiEnv {
  Bindings: HttpBindings & { upgrade?: Upgrade };
  Variables: {
    caller: Caller;
    /** Looks a request's key up (set once per request by the app). */
    authenticate: (level: Exclude<AuthLevel, 'public'>) => Promise<Caller>;
  };
}

export interface RouteOptions {
  auth: AuthLevel;
  /** For a JSON body: the most bytes read (default 1 MiB). */
  bodyLimitBytes?: number;
}

/** A route config with its auth level applied (the first middleware, `security` and `x-capsule-auth` in OpenAPI). */
export function defineRoute<const R extends RouteConfig>(options: RouteOptions, config: R): R {
  const middleware: MiddlewareHandler<ApiEnv>[] = [requireCaller(options.auth)];
  const json = jsonBodyOf(config);
  if (json) middleware.push(readJsonBody(options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES, json.required));
  return createRoute({
    ...config,
    middleware,
    ...(options.auth === 'public' ? { security: [] } : {}),
    'x-capsule-auth': options.auth,
    responses: { ...config.responses, default: errorResponse },
  }) as R;
}

function requireCaller(level: AuthLevel): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    c.set('caller', level === 'public' ? { tenantId: '', isAdmin: false } : await c.var.authenticate(level));
    await next();
  };
}

/** A JSON body the framework validates (a zod schema); a documented-only one is the handler's to read. */
function jsonBodyOf(config: RouteConfig): { required: boolean } | null {
  const body = config.request?.body;
  const media = body?.content?.['application/json'];
  return media && 'schema' in media && media.schema instanceof z.ZodType ? { required: body.required === true } : null;
}

/**
 * The body read within its limit and parsed, before the framework validates it: a wrong Content-Type or
 * malformed JSON is BAD_REQUEST (not a validation failure of an empty object), and an optional body
 * that is absent (no Content-Type, no bytes) reads as `{}` so the schema's defaults apply.
 */
function readJsonBody(limitBytes: number, required: boolean): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const type = c.req.header('content-type') ?? '';
    const body = await readBody(c.env.incoming, limitBytes);
    let parsed: unknown = {};
    if (required || body.length > 0 || type !== '') {
      if (!/^application\/json\b/i.test(type))
        throw new CapsuleError(ErrorCode.BAD_REQUEST, 'Content-Type must be application/json');
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new CapsuleError(ErrorCode.BAD_REQUEST, `malformed JSON: ${(err as Error).message}`);
      }
    }
    c.req.bodyCache.json = Promise.resolve(parsed);
    // the validator reads a JSON body only under a JSON Content-Type; an absent optional one is {}
    if (type === '') c.req.raw.headers.set('content-type', 'application/json');
    await next();
  };
}

const errorResponse = {
  description: 'an error: a stable code with a fixed HTTP status',
  content: { 'application/json': { schema: ErrorBody } },
};

/** A JSON response documented by `schema`. */
export const json = <S extends z.ZodType>(schema: S, description = 'OK') =>
  ({ description, content: { 'application/json': { schema } } }) as const;

/** Bytes of any kind, as OpenAPI says it. */
const BINARY = { type: 'string', format: 'binary' } as const;

/** A streamed or raw response of one media type. */
export const raw = (mediaType: string, description: string) => ({
  description,
  content: { [mediaType]: { schema: BINARY } },
});

export const noContent = { description: 'no body' } as const;

/** A JSON request body validated by `schema`. */
export const jsonBody = <S extends z.ZodType>(schema: S, required = true) =>
  ({ required, content: { 'application/json': { schema } } }) as const;

/** A zod schema as a plain JSON Schema: shown in the document, validated by the handler, not the framework. */
export const documented = (schema: z.ZodType): Record<string, unknown> => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  return rest;
};

/** A raw byte stream as the request body (read by the handler). */
export const binaryBody = (mediaType = 'application/octet-stream') => ({
  required: true,
  content: { [mediaType]: { schema: BINARY } },
});
