/**
 * src/delivery — HTTP delivery and its reliability units. The public surface; nothing outside
 * this folder imports its files directly.
 *
 * Pure policy: backoff, Retry-After, classification, circuit breaker, token bucket, throttle,
 * SSRF address policy, body encodings, token cache.
 * I/O: `HttpDeliverer` (undici pools with the SSRF guard on the connect path) and the OAuth2
 * token fetch; `withAuth` wraps any `Deliverer`.
 */
export {
  AuthTokenError,
  BodyEncodingError,
  DeliveryAbortedError,
  DeliveryConfigError,
  DeliveryNetworkError,
  DeliveryTimeoutError,
  FerryDeliveryError,
  InvalidDeliveryRequestError,
  InvalidTargetUrlError,
  TargetDeniedError,
  TargetResolutionError,
} from './errors.ts';
export type { DenyStage, InvalidUrlReason, TimeoutPhase } from './errors.ts';

export { backoffCeiling, backoffDelay, validateBackoffPolicy } from './backoff.ts';
export type { BackoffPolicy, Jitter } from './backoff.ts';

export { parseHttpDate, parseRetryAfter, retryDelay } from './retry-after.ts';
export type { RetryAfterOptions, RetryDelayInput } from './retry-after.ts';

export { classify, outcomeOfError } from './classify.ts';
export type {
  BreakerVerdict,
  Classification,
  ClassifyPolicy,
  DeliveryOutcome,
  ImmediateFallbackReason,
  RetryOnEntry,
} from './classify.ts';

export { CircuitBreaker } from './circuit-breaker.ts';
export type {
  CircuitBreakerOptions,
  CircuitBreakerPolicy,
  CircuitSnapshot,
  CircuitState,
  CircuitTransition,
  TransitionReason,
} from './circuit-breaker.ts';

export { TokenBucket } from './rate-limiter.ts';
export type { TokenBucketOptions } from './rate-limiter.ts';
export { perReplicaShare, ThrottleController } from './throttle.ts';
export type { ThrottlePolicy, ThrottleState, ThrottleUpdate } from './throttle.ts';

export { assertAddressAllowed, checkTargetUrl, createAddressPolicy } from './ssrf-guard.ts';
export type { AddressPolicy, AddressPolicyOptions, AddressVerdict } from './ssrf-guard.ts';
export { createGuardedConnector, createGuardedLookup, systemResolver } from './guarded-connect.ts';
export type { GuardedConnectorOptions, Resolver } from './guarded-connect.ts';

export { encodeBody, encodeForm } from './encoding.ts';
export type { BodyEncoding, EncodedBody } from './encoding.ts';

export { mergeHeaders } from './deliverer.ts';
export type { Deliverer, DeliveryBody, DeliveryRequest, DeliveryResponse, HttpMethod } from './deliverer.ts';
export { HttpDeliverer } from './http-deliverer.ts';
export type { HttpDelivererOptions, OriginStats } from './http-deliverer.ts';

export { apiKeyAuth, basicAuth, bearerAuth } from './auth.ts';
export type { Authorization, AuthProvider } from './auth.ts';
export { OAuth2ClientCredentials, parseTokenResponse } from './oauth2.ts';
export type { OAuth2ClientCredentialsOptions, OAuth2Dependencies } from './oauth2.ts';
export { TokenCache, tokenCacheKey, tokenUsableUntil } from './token-cache.ts';
export type { CachedToken, TokenLifetimeOptions } from './token-cache.ts';
export { withAuth } from './with-auth.ts';
