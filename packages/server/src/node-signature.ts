// Requests one node makes of another: in a tenant's name (a draining host asking another to resume one of its
// MicroVMs), or passed on for a client (tenant `*`: the client's own key or token authenticates it there).
// Signed with an HMAC-SHA256 key derived from CAPSULE_CLUSTER_KEY, which every server of a cluster shares and
// none stores in the database. The signature covers the method, the path with its query, the time,
// the signing node and the tenant it acts for; it is good for a minute either way (hosts' clocks agree: their
// leases need it too). Bodies are not covered: node requests carry none. Nodes talk over a private network.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

const NODE_HEADER = 'x-capsule-node';
/** Set on a request one server passes to another: it is answered where it lands, never passed on again. */
export const FORWARDED_BY = 'x-capsule-forwarded-by';
const DATE_HEADER = 'x-capsule-node-date';
const TENANT_HEADER = 'x-capsule-node-tenant';
const SIGNATURE_HEADER = 'x-capsule-node-signature';
const MAX_SKEW_MS = 60_000;
/** The tenant of a request a server forwards: none asserted, the request's own key or token authenticates it. */
export const FORWARDED = '*';

export interface NodeCaller {
  node: string;
  tenantId: string;
}

export class NodeSignatures {
  private readonly key: Buffer;

  constructor(clusterKey: string) {
    this.key = createHmac('sha256', clusterKey).update('capsule node requests').digest();
  }

  private mac(parts: string[]): Buffer {
    return createHmac('sha256', this.key).update(parts.join('\n')).digest();
  }

  /** Headers that make `method pathAndQuery` a request by `node` for `tenantId`. */
  sign(
    method: string,
    pathAndQuery: string,
    node: string,
    tenantId: string,
    nowMs = Date.now(),
  ): Record<string, string> {
    const date = String(nowMs);
    return {
      [NODE_HEADER]: node,
      [DATE_HEADER]: date,
      [TENANT_HEADER]: tenantId,
      [SIGNATURE_HEADER]: this.mac([method.toUpperCase(), pathAndQuery, date, node, tenantId]).toString('base64url'),
    };
  }

  /** Whether `signature` is this key's over `parts`. */
  matches(parts: string[], signature: string): boolean {
    const given = Buffer.from(signature, 'base64url');
    const expected = this.mac(parts);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/** Whether a request says it is a node's (whoever checks it). */
function isNodeSigned(headers: IncomingHttpHeaders): boolean {
  return headers[SIGNATURE_HEADER] !== undefined;
}

/**
 * The node and tenant of a signed request; null when it is not signed; UNAUTHORIZED when its signature is bad or
 * stale, or this server has no cluster key to check it with.
 */
export function verifyNodeRequest(
  signatures: NodeSignatures | null,
  method: string,
  pathAndQuery: string,
  headers: IncomingHttpHeaders,
  nowMs = Date.now(),
): NodeCaller | null {
  if (!isNodeSigned(headers)) return null;
  const refuse = (why: string) => new CapsuleError(ErrorCode.UNAUTHORIZED, `node request refused: ${why}`);
  if (!signatures) throw refuse('this server has no CAPSULE_CLUSTER_KEY');
  const [node, date, tenantId, signature] = [NODE_HEADER, DATE_HEADER, TENANT_HEADER, SIGNATURE_HEADER].map((h) =>
    String(headers[h] ?? ''),
  );
  if (!node || !tenantId || !/^\d{1,15}$/.test(date)) throw refuse('incomplete signature headers');
  if (Math.abs(nowMs - Number(date)) > MAX_SKEW_MS) throw refuse('its date is more than a minute off');
  if (!signatures.matches([method.toUpperCase(), pathAndQuery, date, node, tenantId], signature))
    throw refuse('bad signature');
  return { node, tenantId };
}
