/**
 * The error policy of delivery: a pure function from what happened to one attempt to what the
 * runtime does next (ack, nak with a delay, or fallback with a reason), and how the attempt counts
 * for the circuit breaker. Kept apart from I/O so the whole table is unit-tested.
 */
import {
  AuthTokenError,
  DeliveryAbortedError,
  DeliveryNetworkError,
  DeliveryTimeoutError,
  TargetResolutionError,
} from './errors.ts';

/** One entry of `spec.delivery.retryOn`: a status code, `"5xx"`, `"network"` or `"timeout"`. */
export type RetryOnEntry = number | '5xx' | 'network' | 'timeout';

/** What one attempt produced, as far as the policy cares. */
export type DeliveryOutcome =
  /** The target answered with `status`; `retryAfterMs` is its parsed Retry-After, if any. */
  | { readonly kind: 'status'; readonly status: number; readonly retryAfterMs?: number | undefined }
  /** A success code whose body broke `responseSchema` (contract drift). */
  | { readonly kind: 'contract'; readonly status: number }
  /** Connection refused/reset, TLS failure, DNS failure, token endpoint unreachable. */
  | { readonly kind: 'network' }
  /** The per-attempt timeout fired. */
  | { readonly kind: 'timeout' }
  /** Ferry refused to send (SSRF guard, bad URL or template, auth config refused): nothing was sent. */
  | { readonly kind: 'refused' }
  /** The caller aborted the attempt (shutdown); says nothing about the target. */
  | { readonly kind: 'aborted' };

/**
 * How an attempt counts for the circuit breaker: `failure` (the target looks unhealthy),
 * `success` (it answered deliberately, even if it refused this event) or `neutral` (throttling,
 * our own refusals and aborts tell nothing about the target's health).
 */
export type BreakerVerdict = 'success' | 'failure' | 'neutral';

/** Why an event goes to the fallback stream at once. */
export type ImmediateFallbackReason = 'rejected' | 'contract';

/** What to do after one attempt. */
export type Classification =
  | { readonly action: 'success'; readonly breaker: BreakerVerdict }
  | {
      readonly action: 'retry';
      /** 429, or 503 with a Retry-After: wait for the hint and lower the shared rate. */
      readonly throttle: boolean;
      readonly breaker: BreakerVerdict;
      /** The target's Retry-After, for `retryDelay()`. */
      readonly retryAfterMs: number | undefined;
    }
  /**
   * 401 / 403: the target refused the credentials. A property of the target (wrong or rotated
   * credentials), not of the event: a breaker failure, and the event stays in its source.
   */
  | { readonly action: 'unauthorized'; readonly status: number; readonly breaker: BreakerVerdict }
  | { readonly action: 'reject'; readonly fallbackReason: 'rejected'; readonly breaker: BreakerVerdict }
  | { readonly action: 'contract'; readonly fallbackReason: 'contract'; readonly breaker: BreakerVerdict };

/** The resolved status-code settings of a target. */
export interface ClassifyPolicy {
  /** `spec.target.successCodes`. */
  readonly successCodes: readonly number[];
  /** `spec.delivery.retryOn`. */
  readonly retryOn: readonly RetryOnEntry[];
}

/**
 * Classifies one attempt. Rules, in order:
 * - a status in `successCodes` is success (even 3xx, if someone listed it);
 * - 3xx is a rejection: redirects are never followed (SSRF) and never retried;
 * - 401 and 403 are `unauthorized`: the credentials were refused, a breaker failure;
 * - a status listed in `retryOn` (or any 5xx with `"5xx"`) is a retry; 429, and 503 with a
 *   Retry-After, are throttles and neutral for the breaker; other retried statuses are failures;
 * - any other status is a rejection (fallback reason `rejected`); the target answered, so it
 *   counts as a breaker success — except an unlisted 5xx, which still counts as a failure;
 * - network errors and timeouts retry when listed in `retryOn`, else are rejected; both are
 *   breaker failures either way;
 * - `refused` is a rejection and `aborted` a retry, both neutral.
 */
export function classify(outcome: DeliveryOutcome, policy: ClassifyPolicy): Classification {
  switch (outcome.kind) {
    case 'contract':
      return { action: 'contract', fallbackReason: 'contract', breaker: 'success' };
    case 'network':
    case 'timeout':
      return policy.retryOn.includes(outcome.kind)
        ? { action: 'retry', throttle: false, breaker: 'failure', retryAfterMs: undefined }
        : { action: 'reject', fallbackReason: 'rejected', breaker: 'failure' };
    case 'refused':
      return { action: 'reject', fallbackReason: 'rejected', breaker: 'neutral' };
    case 'aborted':
      return { action: 'retry', throttle: false, breaker: 'neutral', retryAfterMs: undefined };
    case 'status':
      return classifyStatus(outcome.status, outcome.retryAfterMs, policy);
  }
}

function classifyStatus(status: number, retryAfterMs: number | undefined, policy: ClassifyPolicy): Classification {
  if (policy.successCodes.includes(status)) return { action: 'success', breaker: 'success' };
  const serverError = status >= 500 && status <= 599;
  if (status >= 300 && status <= 399) return { action: 'reject', fallbackReason: 'rejected', breaker: 'success' };
  if (status === 401 || status === 403) return { action: 'unauthorized', status, breaker: 'failure' };
  const listed = policy.retryOn.includes(status) || (serverError && policy.retryOn.includes('5xx'));
  if (!listed) return { action: 'reject', fallbackReason: 'rejected', breaker: serverError ? 'failure' : 'success' };
  const throttle = status === 429 || (status === 503 && retryAfterMs !== undefined);
  return { action: 'retry', throttle, breaker: throttle ? 'neutral' : 'failure', retryAfterMs };
}

/**
 * Maps an error thrown by a `Deliverer` (or by building the request) to an outcome. Ferry's
 * retryable transport errors are `network`/`timeout`; an abort is `aborted`; everything else —
 * non-retryable Ferry errors and unknown errors alike — is `refused`, so a bug parks the event
 * visibly instead of retrying it to exhaustion.
 */
export function outcomeOfError(error: unknown): DeliveryOutcome {
  if (error instanceof DeliveryTimeoutError) return { kind: 'timeout' };
  if (error instanceof DeliveryAbortedError) return { kind: 'aborted' };
  if (error instanceof DeliveryNetworkError || error instanceof TargetResolutionError) return { kind: 'network' };
  if (error instanceof AuthTokenError && error.retryable) return { kind: 'network' };
  return { kind: 'refused' };
}
