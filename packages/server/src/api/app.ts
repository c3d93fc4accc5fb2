// The REST API as one Hono app: every route (WebSocket ones too) in one table with its zod schemas and
// auth level, the OpenAPI 3.1 document generated from that table, and one error envelope. Validation
// failures, framework errors and unknown paths all become CapsuleErrors here, once.
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { routePath } from 'hono/route';
import type { ZodError } from 'zod';
import { CapsuleError, ErrorCode, ERROR_STATUS, formatIssues } from '@capsule/protocol';
import type { Logger } from '../log.js';
import type { NodeSignatures } from '../node-signature.js';
import type { Store } from '../store/types.js';
import { authenticate } from './auth.js';
import { errorEnvelope, toCapsuleError } from './http.js';
import type { ApiEnv } from './route.js';

export type ApiApp = OpenAPIHono<ApiEnv>;

export interface ApiAppDeps {
  store: Store;
  log: Logger;
  /** Checks requests other nodes sign in a tenant's name (null: no cluster key, such requests are refused). */
  nodes?: NodeSignatures | null;
  /** Called with each matched request's route pattern (`/v1/microvms/:id`), for the request metrics. */
  onRoute?: (incoming: ApiEnv['Bindings']['incoming'], pattern: string) => void;
}

/** A failed validation as the API answers it: a path parameter that names nothing is the code its schema says. */
export function validationError(error: ZodError): CapsuleError {
  for (const issue of error.issues) {
    const code = issue.code === 'custom' ? (issue.params as { code?: ErrorCode } | undefined)?.code : undefined;
    if (code) return new CapsuleError(code, issue.message);
  }
  return new CapsuleError(ErrorCode.VALIDATION_FAILED, formatIssues(error));
}

export function createApiApp({ store, log, nodes = null, onRoute }: ApiAppDeps): ApiApp {
  const app = new OpenAPIHono<ApiEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error);
    },
  });
  app.use(async (c, next) => {
    try {
      decodeURIComponent(c.req.path);
    } catch {
      throw new CapsuleError(ErrorCode.BAD_REQUEST, 'malformed percent-encoding in the path');
    }
    c.set('authenticate', async (level) => {
      const caller = await authenticate(c.env.incoming, store, nodes);
      if (level === 'admin' && !caller.isAdmin)
        throw new CapsuleError(ErrorCode.FORBIDDEN, `${c.req.method} ${routePath(c, -1)} needs the admin key`);
      return caller;
    });
    await next();
    const pattern = routePath(c, -1);
    if (pattern !== '/*' && pattern !== '*') onRoute?.(c.env.incoming, pattern);
  });
  app.onError((err, c) => answerError(c, err, log));
  // a path some route answers with another method is 405; the route list is the app's own
  app.notFound((c) => {
    const known = app.routes.some((r) => r.method !== 'ALL' && pathPattern(r.path).test(c.req.path));
    const error = known
      ? new CapsuleError(ErrorCode.METHOD_NOT_ALLOWED, `method ${c.req.method} is not allowed on ${c.req.path}`)
      : new CapsuleError(ErrorCode.NOT_FOUND, `no route for ${c.req.method} ${c.req.path}`);
    return answerError(c, error, log);
  });
  return app;
}

/** `/v1/microvms/:id` as a regex over request paths. */
const pathPattern = (routePattern: string): RegExp => new RegExp(`^${routePattern.replace(/:[^/]+/g, '[^/]+')}$`);

function answerError(c: Context<ApiEnv>, err: unknown, log: Logger): Response {
  const error =
    err instanceof HTTPException
      ? new CapsuleError(err.status === 413 ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.BAD_REQUEST, err.message)
      : toCapsuleError(err);
  if (error.code === ErrorCode.INTERNAL)
    log.error('request failed', { method: c.req.method, url: c.req.url, error: String((err as Error)?.stack ?? err) });
  const retryAfterSeconds = error.details?.retryAfterSeconds;
  return c.json(
    errorEnvelope(error),
    ERROR_STATUS[error.code] as 400,
    typeof retryAfterSeconds === 'number' ? { 'retry-after': String(retryAfterSeconds) } : {},
  );
}
