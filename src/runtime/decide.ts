/**
 * The failure contract (DESIGN.md, "Failure handling — the contract") as one pure function:
 * from what happened to one attempt, to what the runtime does with the event. Each row of the
 * table is a branch here, so the contract is read and tested in one place.
 */
import { backoffDelay, classify, retryDelay, type BreakerVerdict, type ClassifyPolicy, type DeliveryOutcome } from '../delivery/index.ts';
import type { FallbackReason } from '../nats/index.ts';

export type { FallbackReason };

export type Decision = (
  | { readonly kind: 'ack' }
  | {
      readonly kind: 'retry';
      readonly delayMs: number;
      /** 429 / 503 with Retry-After: lower the shared rate; not a breaker failure. */
      readonly throttle: boolean;
      readonly retryAfterMs: number | undefined;
      /** 401 / 403: the credentials were refused; the attempt does not count to maxAttempts. */
      readonly unauthorized: boolean;
    }
  | { readonly kind: 'fallback'; readonly reason: FallbackReason }
) & {
  /** How the attempt counts for the circuit breaker. */
  readonly breaker: BreakerVerdict;
};

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly maxElapsedMs: number;
  readonly backoff: { readonly initialMs: number; readonly maxMs: number; readonly multiplier: number; readonly jitter: 'full' | 'equal' | 'none' };
  readonly retryAfterMaxMs: number;
  readonly circuitBreaker: { readonly openForMs: number };
}

export interface AttemptFacts {
  readonly outcome: DeliveryOutcome;
  /** Attempts that count to `maxAttempts`, this one included (401/403 answers do not count). */
  readonly attempt: number;
  /** When the event's first HTTP attempt was made; `maxElapsed` counts from there. */
  readonly firstAttemptMs: number;
  readonly now: number;
  /** 401/403 answers this event got, this one included if it is one. */
  readonly authFailures: number;
  /**
   * True when other events were delivered with the same credentials after this event's first
   * 401/403: then the refusal is about this event, not the credentials.
   */
  readonly othersDeliveredSinceAuthFailure: boolean;
}

/**
 * Decides an attempt's fate:
 * - success → ack;
 * - reject (other 4xx, 3xx, unlisted errors) → fallback `rejected` at once;
 * - contract (2xx breaking responseSchema) → fallback `contract`;
 * - unauthorized (401 / 403) → the event stays in its source (retry after
 *   `min(backoff(authFailures), openFor)`), however long the credentials stay wrong; only when the
 *   same event was refused `maxAttempts` times while other events got through is it `rejected`;
 * - retryable → `nak(max(backoff(n), min(Retry-After, retryAfterMax)))`, unless this was attempt
 *   `maxAttempts` or the next try would start more than `maxElapsed` after the first attempt →
 *   fallback `exhausted`.
 */
export function decide(facts: AttemptFacts, policy: ClassifyPolicy, retry: RetryPolicy, random: () => number = Math.random): Decision {
  const c = classify(facts.outcome, policy);
  const breaker = c.breaker;
  switch (c.action) {
    case 'success':
      return { kind: 'ack', breaker };
    case 'reject':
      return { kind: 'fallback', reason: 'rejected', breaker };
    case 'contract':
      return { kind: 'fallback', reason: 'contract', breaker };
    case 'unauthorized': {
      if (facts.authFailures >= retry.maxAttempts && facts.othersDeliveredSinceAuthFailure) return { kind: 'fallback', reason: 'rejected', breaker };
      // Capped by openFor: new credentials must not wait longer than the breaker would.
      const delayMs = Math.min(backoffDelay(facts.authFailures, retry.backoff, random), retry.circuitBreaker.openForMs);
      return { kind: 'retry', delayMs, throttle: false, retryAfterMs: undefined, unauthorized: true, breaker };
    }
    case 'retry': {
      if (facts.attempt >= retry.maxAttempts) return { kind: 'fallback', reason: 'exhausted', breaker };
      const delayMs = retryDelay({
        attempt: facts.attempt,
        backoff: retry.backoff,
        retryAfterMs: c.retryAfterMs,
        retryAfterMaxMs: retry.retryAfterMaxMs,
        random,
      });
      if (facts.now + delayMs - facts.firstAttemptMs > retry.maxElapsedMs) return { kind: 'fallback', reason: 'exhausted', breaker };
      return { kind: 'retry', delayMs, throttle: c.throttle, retryAfterMs: c.retryAfterMs, unauthorized: false, breaker };
    }
  }
}
