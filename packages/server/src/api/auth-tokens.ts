// Endpoint auth tokens: scoped to one MicroVM, a set of guest ports and a TTL (≤ 1 h). Stateless:
// the claims are signed with HMAC-SHA256 under a secret kept 0600 in the data dir, or, with several
// servers, one derived from their shared CAPSULE_CLUSTER_KEY (so a token any server made works on the VM's
// host; the database never holds it). Checking one costs no database read; a restart keeps them valid.
import { secretFileText } from '../secret-file.js';
import path from 'node:path';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

const PREFIX = 'cat_';
const PortRange = z.tuple([z.number().int(), z.number().int()]);
const Claims = z.object({
  v: z.string(),
  t: z.string(),
  p: z.array(z.number().int()),
  r: z.array(PortRange).optional(),
  s: z.literal(1).optional(),
  e: z.number(),
});
export type TokenClaims = {
  microvmId: string;
  tenantId: string;
  allowedPorts: number[];
  /** Inclusive ranges besides the single ports (AWS's `range` and `allPorts`: [1, 65535]). */
  allowedPortRanges?: Array<[number, number]>;
  /** A shell token (the AWS API's CreateMicrovmShellAuthToken): it opens the VM's shell and reaches no port. */
  shell?: boolean;
  expiresAtMs: number;
};

/** A token's ports as it keeps them: each once, in order. */
export function normalizedPorts(ports: number[]): number[] {
  return [...new Set(ports)].sort((a, b) => a - b);
}

export function tokenAllowsPort(claims: TokenClaims, port: number): boolean {
  if (claims.shell) return false;
  return (
    claims.allowedPorts.includes(port) || (claims.allowedPortRanges ?? []).some(([a, b]) => a <= port && port <= b)
  );
}

export function describePorts(claims: TokenClaims): string {
  return [...claims.allowedPorts.map(String), ...(claims.allowedPortRanges ?? []).map(([a, b]) => `${a}-${b}`)].join(
    ', ',
  );
}

export class AuthTokens {
  private constructor(private readonly secret: Buffer) {}

  /**
   * The signing secret: derived from the cluster key when there is one, else `<dataDir>/token-secret` (made on
   * first start).
   */
  static load(dataDir: string, clusterKey: string | null): AuthTokens {
    if (clusterKey) return new AuthTokens(createHmac('sha256', clusterKey).update('capsule endpoint tokens').digest());
    const secret = secretFileText(path.join(dataDir, 'token-secret'), () => randomBytes(32).toString('hex'));
    return new AuthTokens(Buffer.from(secret, 'hex'));
  }

  static looksLikeToken(value: string): boolean {
    return value.startsWith(PREFIX);
  }

  issue(claims: TokenClaims): string {
    const body = Buffer.from(
      JSON.stringify({
        v: claims.microvmId,
        t: claims.tenantId,
        p: normalizedPorts(claims.allowedPorts),
        ...(claims.allowedPortRanges?.length ? { r: claims.allowedPortRanges } : {}),
        ...(claims.shell ? { s: 1 } : {}),
        e: claims.expiresAtMs,
      }),
    ).toString('base64url');
    return `${PREFIX}${body}.${this.sign(body)}`;
  }

  /** The claims of a genuine, unexpired token; null otherwise (the caller answers 401). */
  verify(token: string, nowMs = Date.now()): TokenClaims | null {
    if (!token.startsWith(PREFIX) || token.length > 4096) return null;
    const [body, signature, extra] = token.slice(PREFIX.length).split('.');
    if (!body || !signature || extra !== undefined) return null;
    const expected = Buffer.from(this.sign(body));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let parsed: z.infer<typeof Claims>;
    try {
      parsed = Claims.parse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
    } catch {
      return null;
    }
    if (parsed.e <= nowMs) return null;
    return {
      microvmId: parsed.v,
      tenantId: parsed.t,
      allowedPorts: parsed.p,
      ...(parsed.r ? { allowedPortRanges: parsed.r } : {}),
      ...(parsed.s ? { shell: true } : {}),
      expiresAtMs: parsed.e,
    };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url');
  }
}
