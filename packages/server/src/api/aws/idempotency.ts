// AWS's `clientToken`: the SDKs put a fresh UUID on every RunMicrovm (and image create/update) and resend it
// on their retries, so a retried request must give back the resource the first one made, not a second one.
// Tokens are kept per tenant and operation for 8 hours in the store; a token reused with other parameters is
// ConflictException; a replay that arrives while the first request is still making its resource waits for it.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { Store } from '../../store/types.js';

const TOKEN_TTL_MS = 8 * 3600_000;
const WAIT_STEP_MS = 200;
/** How long a replay waits for the first request's resource (a launch that boots cold takes seconds). */
const WAIT_MAX_MS = 120_000;

/** JSON with object keys sorted, so the same parameters always hash the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * `make` the resource once per `clientToken` (no token: every time) and answer `view` of it. `parameters` are
 * what must match for a replay (everything the request said but the token).
 */
export async function idempotent<T>(
  store: Store,
  key: { tenantId: string; operation: string; clientToken: string | undefined },
  parameters: unknown,
  make: () => Promise<string>,
  view: (resourceId: string) => Promise<T>,
): Promise<T> {
  const { tenantId, operation, clientToken: token } = key;
  if (token === undefined) return view(await make());
  const requestHash = createHash('sha256').update(canonical(parameters)).digest('hex');
  const deadline = Date.now() + WAIT_MAX_MS;
  for (;;) {
    const now = Date.now();
    const expiresAt = new Date(now + TOKEN_TTL_MS).toISOString();
    const held = await store.claimIdempotencyToken(
      { tenantId, operation, token, requestHash, resourceId: null, expiresAt },
      new Date(now).toISOString(),
    );
    if (held === null) {
      let resourceId: string;
      try {
        resourceId = await make();
      } catch (err) {
        await store.settleIdempotencyToken({ tenantId, operation, token }, null); // a retry may try again
        throw err;
      }
      await store.settleIdempotencyToken({ tenantId, operation, token }, resourceId);
      return view(resourceId);
    }
    if (held.requestHash !== requestHash) {
      throw new CapsuleError(
        ErrorCode.ALREADY_EXISTS,
        `clientToken ${JSON.stringify(token)} was already used for ${operation} with other parameters`,
      );
    }
    if (held.resourceId !== null) return view(held.resourceId);
    if (Date.now() > deadline) {
      throw new CapsuleError(ErrorCode.INVALID_STATE, `the first ${operation} with this clientToken is still running`);
    }
    await sleep(WAIT_STEP_MS);
  }
}
