/**
 * Exponential backoff for delivery retries. Pure: the runtime passes the attempt number it keeps
 * per event (in JetStream KV), so no attempt counter lives in process memory.
 */
import { DeliveryConfigError } from './errors.ts';

/**
 * How a delay is spread below its ceiling (AWS Architecture Blog, "Exponential Backoff and Jitter"):
 * `full` = uniform in [0, ceiling], `equal` = uniform in [ceiling/2, ceiling], `none` = the ceiling.
 */
export type Jitter = 'full' | 'equal' | 'none';

/** A resolved `spec.delivery.backoff`. */
export interface BackoffPolicy {
  /** Ceiling of the first retry's delay. */
  readonly initialMs: number;
  /** No delay exceeds this. */
  readonly maxMs: number;
  /** Growth of the ceiling per attempt (≥ 1). */
  readonly multiplier: number;
  readonly jitter: Jitter;
}

/**
 * Throws {@link DeliveryConfigError} when `policy` cannot produce sensible delays. Called once when
 * a pipeline is built, so a bad policy stalls the config instead of failing per event.
 */
export function validateBackoffPolicy(policy: BackoffPolicy): void {
  if (!(Number.isFinite(policy.initialMs) && policy.initialMs >= 0)) {
    throw new DeliveryConfigError('backoff.initial', 'must be a finite, non-negative duration');
  }
  if (!(Number.isFinite(policy.maxMs) && policy.maxMs >= policy.initialMs)) {
    throw new DeliveryConfigError('backoff.max', 'must be finite and at least backoff.initial');
  }
  if (!(Number.isFinite(policy.multiplier) && policy.multiplier >= 1)) {
    throw new DeliveryConfigError('backoff.multiplier', 'must be a finite number ≥ 1');
  }
}

/**
 * The largest delay attempt `attempt` may get: `min(maxMs, initialMs × multiplier^(attempt-1))`.
 * `attempt` counts from 1 (the first retry); lower values are treated as 1.
 */
export function backoffCeiling(attempt: number, policy: BackoffPolicy): number {
  const n = Math.max(1, Math.floor(attempt));
  // Past ~1100 steps any multiplier ≥ 2 overflows to Infinity; min() caps that correctly.
  return Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** (n - 1));
}

/**
 * The delay before retry `attempt` (1-based), in whole milliseconds, within
 * [0, {@link backoffCeiling}] and never above `policy.maxMs`. `random` must return values in
 * [0, 1); tests pass a constant or a seeded source.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(attempt, policy);
  switch (policy.jitter) {
    case 'none':
      return Math.floor(ceiling);
    case 'full':
      return Math.floor(random() * ceiling);
    case 'equal':
      return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
  }
}
