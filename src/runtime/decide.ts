/**
 * The failure contract (DESIGN.md, "Failure handling — the contract") as one pure function:
 * from what happened to one attempt, to what the runtime does with the event. Each row of the
 * table is a branch here, so the contract is read and tested in one place.
 */
import { classify, retryDelay, type BreakerVerdict, type ClassifyPolicy, type DeliveryOutcome } from '../delivery/index.ts';

export type FallbackReason = 'invalid' | 'transform' | 'exhausted' | 'rejected' | 'contract';

export type Decision = (
  | { readonly kind: 'ack' }
  | {
      readonly kind: 'retry';
      readonly delayMs: number;
      /** 429 / 503 with Retry-After: lower the shared rate; not a breaker failure. */
      readonly throttle: boolean;
      readonly retryAfterMs: number | undefined;
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
}

export interface AttemptFacts {
  readonly outcome: DeliveryOutcome;
  /** JetStream's delivery count of this attempt (1 = first). */
  readonly attempt: number;
  /** When the event entered the stream; `maxElapsed` counts from there. */
  readonly storedAtMs: number;
  readonly now: number;
}

/**
 * Decides an attempt's fate:
 * - success → ack;
 * - reject (other 4xx, 3xx, unlisted errors) → fallback `rejected` at once;
 * - contract (2xx breaking responseSchema) → fallback `contract`;
 * - retryable → `nak(max(backoff(n), min(Retry-After, retryAfterMax)))`, unless this was attempt
 *   `maxAttempts` or the next try would start after `maxElapsed` → fallback `exhausted`.
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
    case 'retry': {
      if (facts.attempt >= retry.maxAttempts) return { kind: 'fallback', reason: 'exhausted', breaker };
      const delayMs = retryDelay({
        attempt: facts.attempt,
        backoff: retry.backoff,
        retryAfterMs: c.retryAfterMs,
        retryAfterMaxMs: retry.retryAfterMaxMs,
        random,
      });
      if (facts.now + delayMs - facts.storedAtMs > retry.maxElapsedMs) return { kind: 'fallback', reason: 'exhausted', breaker };
      return { kind: 'retry', delayMs, throttle: c.throttle, retryAfterMs: c.retryAfterMs, breaker };
    }
  }
}
