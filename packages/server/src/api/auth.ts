// API keys: random, shown once, stored as SHA-256 (the admin key: admin-key.ts).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { CapsuleError, ErrorCode, WS_BEARER_PREFIX } from '@capsule/protocol';
import { FORWARDED, type NodeSignatures, verifyNodeRequest } from '../node-signature.js';
import type { Store } from '../store/types.js';

export const DEFAULT_TENANT = 'default';
/** The admin key's id: it is rotated, never revoked. */
export const ADMIN_KEY_ID = 'key-admin';

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function newApiKey(): string {
  return 'cap_' + randomBytes(32).toString('base64url');
}

export function newKeyId(): string {
  return 'key-' + randomBytes(8).toString('hex');
}

export interface Caller {
  tenantId: string;
  isAdmin: boolean;
}

/** The key in `Authorization: Bearer <key>`, if there is one. */
export function bearerKey(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  return (header && /^Bearer\s+(\S+)$/i.exec(header)?.[1]) || null;
}

/** Whose key this is: the one place a key is looked up (API, endpoints, sessions). */
export async function callerOf(key: string, store: Pick<Store, 'findApiKey'>): Promise<Caller> {
  const found = await store.findApiKey(hashKey(key));
  if (!found) throw new CapsuleError(ErrorCode.UNAUTHORIZED, 'invalid API key');
  return { tenantId: found.tenantId, isAdmin: found.isAdmin };
}

/**
 * The key a request carries: `Authorization: Bearer`, or on a WebSocket upgrade a `bearer.` subprotocol (browsers
 * cannot set headers there).
 */
function requestKey(req: IncomingMessage): string | null {
  const bearer = bearerKey(req);
  if (bearer || !req.headers.upgrade) return bearer;
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim());
  return offered.find((p) => p.startsWith(WS_BEARER_PREFIX))?.slice(WS_BEARER_PREFIX.length) || null;
}

/**
 * The caller of an API request, by the key it carries; or, signed by another node of the cluster (`nodes`: the
 * cluster key's signatures), the tenant that node acts for.
 */
export async function authenticate(
  req: IncomingMessage,
  store: Pick<Store, 'findApiKey'>,
  nodes: NodeSignatures | null = null,
): Promise<Caller> {
  const node = verifyNodeRequest(nodes, req.method ?? 'GET', req.url ?? '/', req.headers);
  if (node && node.tenantId !== FORWARDED) return { tenantId: node.tenantId, isAdmin: false };
  const key = requestKey(req);
  if (!key) throw new CapsuleError(ErrorCode.UNAUTHORIZED, 'missing API key: send "Authorization: Bearer <key>"');
  return callerOf(key, store);
}
