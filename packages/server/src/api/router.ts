// A small method + path router: `/v1/microvms/:id/exec` style patterns, params URL-decoded.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  tenantId: string;
  /** The admin key: may manage tenants and keys. */
  isAdmin: boolean;
}

/** What /v1/openapi.json says about a route: the schemas here are the ones its handler validates with. */
export interface RouteDoc {
  summary: string;
  /** A JSON body validated by this schema, or a raw byte stream. */
  body?: z.ZodTypeAny | 'binary';
  query?: Record<string, string>;
  /** By status: a JSON schema, a content type (streams), or nothing (no body). */
  responses: Record<number, z.ZodTypeAny | string | null>;
}

export interface Route {
  method: string;
  pattern: string;
  /** Routes that answer without an API key (health checks). */
  public?: boolean;
  doc: RouteDoc;
  handle(ctx: RouteContext): Promise<void>;
}

interface Compiled {
  route: Route;
  regex: RegExp;
  names: string[];
}

export class Router {
  private readonly routes: Compiled[] = [];

  add(route: Route): void {
    const names: string[] = [];
    const source = route.pattern.replace(/:([a-zA-Z]+)/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    this.routes.push({ route, regex: new RegExp(`^${source}$`), names });
  }

  /** The matching route; NOT_FOUND for an unknown path, METHOD_NOT_ALLOWED for a known path. */
  match(method: string, pathname: string): { route: Route; params: Record<string, string> } {
    let pathMatched = false;
    for (const { route, regex, names } of this.routes) {
      const m = regex.exec(pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(m[i + 1]);
        } catch {
          throw new CapsuleError(ErrorCode.BAD_REQUEST, `malformed path parameter ${name}`);
        }
      });
      return { route, params };
    }
    if (pathMatched) throw new CapsuleError(ErrorCode.METHOD_NOT_ALLOWED, `method ${method} is not allowed on ${pathname}`);
    throw new CapsuleError(ErrorCode.NOT_FOUND, `no route for ${method} ${pathname}`);
  }
}
