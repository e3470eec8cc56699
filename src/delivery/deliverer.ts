/**
 * The tiny interface every delivery component speaks: one HTTP attempt in, one response out.
 * Reliability (auth refresh, and in the runtime: rate limit, breaker, retry) is added by wrapping
 * a `Deliverer`, never by editing the HTTP implementation.
 */
import type { BodyEncoding } from './encoding.ts';

/** The methods a target may be written with (GET for lookups and token-less reads). */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A body and how to put it on the wire. */
export interface DeliveryBody {
  readonly encoding: BodyEncoding;
  readonly value: unknown;
}

/** One attempt. */
export interface DeliveryRequest {
  /** Absolute http(s) URL, already rendered from its template. */
  readonly url: string;
  readonly method: HttpMethod;
  /** Extra headers (names case-insensitive). Content-Type defaults from the encoding. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: DeliveryBody;
  /**
   * Sent as `idempotencyHeader` on every attempt; required for event deliveries (see
   * `idempotencyKey()`), absent only for requests that are safe to repeat (token requests).
   */
  readonly idempotencyKey?: string;
  /** Default `Idempotency-Key`. */
  readonly idempotencyHeader?: string;
  /** Bound on the whole attempt: connect, send, response headers and (bounded) body. */
  readonly timeoutMs: number;
  /** Aborts the attempt (shutdown); the attempt then rejects with `DeliveryAbortedError`. */
  readonly signal?: AbortSignal;
}

/** What the target answered. Any status is a response; classifying it is `classify()`'s job. */
export interface DeliveryResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as UTF-8 text, at most the deliverer's limit (64 KiB by default). */
  readonly body: string;
  /** True when the body was longer than the limit and cut. */
  readonly truncated: boolean;
  /** From sending the request to the end of the (bounded) body read. */
  readonly durationMs: number;
}

/**
 * Sends one attempt. Resolves with the response for every status (2xx, 3xx — redirects are never
 * followed —, 4xx, 5xx). Rejects only with Ferry's typed errors: `TargetDeniedError`,
 * `InvalidTargetUrlError`, `TargetResolutionError`, `DeliveryNetworkError`,
 * `DeliveryTimeoutError`, `DeliveryAbortedError`, `InvalidDeliveryRequestError`,
 * `BodyEncodingError`, `AuthTokenError`; `outcomeOfError()` maps each to a policy outcome.
 */
export interface Deliverer {
  deliver(request: DeliveryRequest): Promise<DeliveryResponse>;
}

/**
 * Merges header sets case-insensitively; later sets win. Names come out lower-case. Used wherever
 * headers from config, auth and idempotency meet, so `Authorization` from config and
 * `authorization` from auth never both go out.
 */
export function mergeHeaders(
  ...sets: readonly (Readonly<Record<string, string>> | undefined)[]
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const set of sets) {
    if (!set) continue;
    // Keys, not entries: no pair arrays allocated on a path that runs for every attempt.
    for (const name of Object.keys(set)) out[name.toLowerCase()] = set[name] as string;
  }
  return out;
}
