// Per-tenant limits on the API: launches per second (a token bucket: 429 RATE_LIMITED with Retry-After)
// and concurrent sessions (exec and shell) and endpoint connections, per VM and per tenant (429 too).
// One tenant with a valid key cannot take the server's capacity from the others; server-wide header and
// request deadlines and a connection cap keep slow clients (slowloris) from holding the server.
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { ApiLimits } from '../config.js';

/** Tokens refill at `ratePerSecond` up to `burst`; each key (tenant) has its own bucket. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Take one token; null when taken, else how long until one is there. */
  take(key: string): number | null {
    const now = this.nowMs();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, atMs: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.atMs) / 1000) * this.ratePerSecond);
    bucket.atMs = now;
    this.buckets.set(key, bucket);
    if (this.buckets.size > 10_000) this.prune(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return null;
    }
    return Math.ceil(((1 - bucket.tokens) / this.ratePerSecond) * 1000);
  }

  /** A full bucket is what a new key gets anyway: forget those, so idle tenants cost nothing. */
  private prune(now: number): void {
    for (const [key, b] of this.buckets)
      if (b.tokens + ((now - b.atMs) / 1000) * this.ratePerSecond >= this.burst) this.buckets.delete(key);
  }
}

export type SessionKind = 'session' | 'tunnel';

/** Counts of open sessions and tunnels per VM and per tenant; acquire() admits one or throws 429. */
export class SessionLimits {
  private readonly open = new Map<string, number>();

  constructor(private readonly limits: ApiLimits) {}

  acquire(tenantId: string, vmId: string, kind: SessionKind): () => void {
    const [perVm, perTenant] =
      kind === 'session'
        ? [this.limits.sessionsPerVm, this.limits.sessionsPerTenant]
        : [this.limits.tunnelsPerVm, this.limits.tunnelsPerTenant];
    const vmKey = `${kind}:vm:${vmId}`;
    const tenantKey = `${kind}:tenant:${tenantId}`;
    const what = kind === 'session' ? 'exec and shell sessions' : 'endpoint connections';
    if (this.count(vmKey) >= perVm)
      throw limited(`MicroVM ${vmId} already has ${perVm} ${what} open`, { limit: perVm, scope: 'microvm' });
    if (this.count(tenantKey) >= perTenant)
      throw limited(`tenant ${tenantId} already has ${perTenant} ${what} open`, { limit: perTenant, scope: 'tenant' });
    this.add(vmKey, 1);
    this.add(tenantKey, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.add(vmKey, -1);
      this.add(tenantKey, -1);
    };
  }

  count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  private add(key: string, delta: number): void {
    const n = this.count(key) + delta;
    if (n <= 0) this.open.delete(key);
    else this.open.set(key, n);
  }
}

function limited(message: string, details: Record<string, unknown>): CapsuleError {
  return new CapsuleError(ErrorCode.RATE_LIMITED, `${message}; close one first`, { details });
}

/** The launch limiter: RATE_LIMITED with retryAfterSeconds (sent as Retry-After) when a tenant's bucket is empty. */
export class LaunchRate {
  private readonly buckets: TokenBuckets;

  constructor(limits: Pick<ApiLimits, 'launchesPerSecond' | 'launchBurst'>, nowMs?: () => number) {
    this.buckets = new TokenBuckets(limits.launchesPerSecond, limits.launchBurst, nowMs);
  }

  check(tenantId: string, action: string): void {
    const waitMs = this.buckets.take(tenantId);
    if (waitMs === null) return;
    const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
    throw new CapsuleError(
      ErrorCode.RATE_LIMITED,
      `too many launches: ${action} refused for tenant ${tenantId}; retry in ${retryAfterSeconds} s`,
      { details: { retryAfterSeconds } },
    );
  }
}
