/**
 * A non-blocking token bucket: a webhook request above the rate is answered 429 at once, never
 * held. Written here (a dozen lines) because src/delivery's TokenBucket is out of ingress's
 * reach by the import rules and is a different tool: it makes callers wait for a token.
 */
import type { Clock } from '../observability/index.ts';

export class RequestBucket {
  private tokens: number;
  private updatedAt: number;
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly clock: Clock;

  /** Starts full. `perSecond` > 0 and `burst` ≥ 1 (the CRD schema guarantees both). */
  constructor(perSecond: number, burst: number, clock: Clock) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.clock = clock;
    this.updatedAt = clock.now();
  }

  /** Takes a token if one is there; otherwise returns the seconds until one will be (for Retry-After). */
  tryTake(): { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number } {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - this.tokens) / this.perSecond)) };
  }
}
