/**
 * Errors raised by src/delivery. Callers decide on `code` and `retryable` (or `instanceof`), never
 * on the message. Foreign errors (undici, node:net, node:dns) are translated into these at the
 * boundary, keeping the foreign code in a readonly field and the original as `cause`.
 *
 * `retryable` answers "could the same request succeed later without anyone editing config?":
 * network trouble and timeouts yes; a denied address, a bad template or a bad URL no.
 */

/** Base of every delivery error; `instanceof FerryDeliveryError` tells Ferry's errors from bugs. */
export abstract class FerryDeliveryError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
}

/**
 * A delivery component was built with options that cannot work (a negative rate, a CIDR that does
 * not parse). Raised at construction, before any request; a config validation bug if it escapes.
 */
export class DeliveryConfigError extends FerryDeliveryError {
  override readonly name = 'DeliveryConfigError';
  readonly code = 'FERRY_DELIVERY_CONFIG';
  readonly retryable = false;
  /** The option at fault, e.g. `backoff.multiplier` or `allowCidrs[1]`. */
  readonly option: string;

  constructor(option: string, problem: string, options?: ErrorOptions) {
    super(`${option}: ${problem}`, options);
    this.option = option;
  }
}

/** Why a URL was refused before any address was looked at. */
export type InvalidUrlReason = 'unparseable' | 'scheme' | 'userinfo';

/**
 * A target URL that Ferry refuses to send to: it does not parse, is not http(s), or carries
 * userinfo (`https://user:pass@host`, which would leak credentials into logs and Host-based
 * routing). `url` never contains the userinfo.
 */
export class InvalidTargetUrlError extends FerryDeliveryError {
  override readonly name = 'InvalidTargetUrlError';
  readonly code = 'FERRY_INVALID_TARGET_URL';
  readonly retryable = false;
  readonly url: string;
  readonly reason: InvalidUrlReason;

  constructor(url: string, reason: InvalidUrlReason, options?: ErrorOptions) {
    const why = {
      unparseable: 'is not a valid absolute URL',
      scheme: 'must use http or https',
      userinfo: 'must not contain a username or password; use spec.target.auth instead',
    }[reason];
    super(`target URL ${url} ${why}`, options);
    this.url = url;
    this.reason = reason;
  }
}

/** Where the SSRF guard stopped a request. */
export type DenyStage = 'url' | 'lookup' | 'connect';

/**
 * The SSRF guard refused an address: it is loopback, private, link-local (cloud metadata),
 * CGNAT, multicast, reserved or in the operator's deny list, and not in the operator's allow list.
 * Nothing was sent to it. Not retryable: only a config change (of the target or of the operator's
 * `allowCidrs`) makes the same request acceptable.
 */
export class TargetDeniedError extends FerryDeliveryError {
  override readonly name = 'TargetDeniedError';
  readonly code = 'FERRY_TARGET_DENIED';
  readonly retryable = false;
  /** The address refused, in canonical form (`169.254.169.254`, `::1`). */
  readonly address: string;
  /** The host name from the URL; equal to `address` for IP-literal URLs. */
  readonly hostname: string;
  /** The ipaddr.js range (`linkLocal`, `private`, `loopback`…), or `denyCidrs <cidr>`, or `invalid`. */
  readonly range: string;
  /** `url`: refused before any connection (IP literal); `lookup`: after DNS; `connect`: on the socket. */
  readonly stage: DenyStage;

  constructor(fields: { address: string; hostname: string; range: string; stage: DenyStage }) {
    const subject =
      fields.hostname === fields.address
        ? `target address ${fields.address}`
        : `target ${fields.hostname} resolved to ${fields.address}, which`;
    const single = `${fields.address}${fields.address.includes(':') ? '/128' : '/32'}`;
    const remedy = fields.range.startsWith('denyCidrs ')
      ? 'remove it from the operator deny list (denyCidrs) if this target is intended'
      : `allow it with the operator's allowCidrs (e.g. ${single}) if this target is intended`;
    super(`${subject} is in a denied range (${fields.range}); ${remedy}`);
    this.address = fields.address;
    this.hostname = fields.hostname;
    this.range = fields.range;
    this.stage = fields.stage;
  }
}

/**
 * The target's host name did not resolve (NXDOMAIN, DNS server down). The guard fails closed, so
 * nothing was sent. Retryable: DNS trouble is often transient; a typo exhausts the attempts.
 */
export class TargetResolutionError extends FerryDeliveryError {
  override readonly name = 'TargetResolutionError';
  readonly code = 'FERRY_TARGET_RESOLUTION';
  readonly retryable = true;
  readonly hostname: string;
  /** node:dns error code (`ENOTFOUND`, `EAI_AGAIN`…), when there was one. */
  readonly dnsCode: string | undefined;

  constructor(hostname: string, dnsCode: string | undefined, options?: ErrorOptions) {
    super(`target host ${hostname} did not resolve${dnsCode ? ` (${dnsCode})` : ''}`, options);
    this.hostname = hostname;
    this.dnsCode = dnsCode;
  }
}

/**
 * The connection failed or broke before a complete response arrived (refused, reset, TLS failure,
 * socket closed mid-body). The target may or may not have applied the request, which is why
 * every delivery carries an idempotency key. Retryable.
 */
export class DeliveryNetworkError extends FerryDeliveryError {
  override readonly name = 'DeliveryNetworkError';
  readonly code = 'FERRY_DELIVERY_NETWORK';
  readonly retryable = true;
  /** The origin dialled, e.g. `https://billing.example.com`. */
  readonly origin: string;
  /** The foreign error's code as reported: undici's `UND_ERR_SOCKET` or a system `ECONNRESET`. */
  readonly causeCode: string | undefined;

  constructor(origin: string, causeCode: string | undefined, detail: string, options?: ErrorOptions) {
    super(`delivery to ${origin} failed: ${detail}${causeCode ? ` (${causeCode})` : ''}`, options);
    this.origin = origin;
    this.causeCode = causeCode;
  }
}

/** Which part of an attempt ran out of time. `attempt` is the whole-attempt deadline. */
export type TimeoutPhase = 'connect' | 'headers' | 'body' | 'attempt';

/**
 * An attempt did not complete within its timeout (connect, response headers or body). The
 * target may still apply it. Retryable.
 */
export class DeliveryTimeoutError extends FerryDeliveryError {
  override readonly name = 'DeliveryTimeoutError';
  readonly code = 'FERRY_DELIVERY_TIMEOUT';
  readonly retryable = true;
  readonly origin: string;
  readonly timeoutMs: number;
  readonly phase: TimeoutPhase;
  /** undici's code when undici's own timer fired (`UND_ERR_HEADERS_TIMEOUT`…). */
  readonly causeCode: string | undefined;

  constructor(origin: string, timeoutMs: number, phase: TimeoutPhase, causeCode?: string, options?: ErrorOptions) {
    super(`delivery to ${origin} timed out after ${timeoutMs}ms (${phase})`, options);
    this.origin = origin;
    this.timeoutMs = timeoutMs;
    this.phase = phase;
    this.causeCode = causeCode;
  }
}

/**
 * The caller's signal aborted the attempt (shutdown, lost lease). Says nothing about the target:
 * the runtime neither counts it as a failure nor acks; the message is redelivered later.
 */
export class DeliveryAbortedError extends FerryDeliveryError {
  override readonly name = 'DeliveryAbortedError';
  readonly code = 'FERRY_DELIVERY_ABORTED';
  readonly retryable = true;
  readonly origin: string;

  constructor(origin: string, options?: ErrorOptions) {
    super(`delivery to ${origin} was aborted by the caller`, options);
    this.origin = origin;
  }
}

/**
 * undici refused to build the request (a header value with CR/LF, an unsupported method). The
 * same request will fail the same way: not retryable.
 */
export class InvalidDeliveryRequestError extends FerryDeliveryError {
  override readonly name = 'InvalidDeliveryRequestError';
  readonly code = 'FERRY_INVALID_DELIVERY_REQUEST';
  readonly retryable = false;
  readonly causeCode: string | undefined;

  constructor(detail: string, causeCode: string | undefined, options?: ErrorOptions) {
    super(`request cannot be sent: ${detail}`, options);
    this.causeCode = causeCode;
  }
}

/**
 * A payload that the chosen encoding cannot express (form encoding needs an object at the top;
 * JSON cannot hold a BigInt or a cycle). `path` locates the value (`/items/0`).
 */
export class BodyEncodingError extends FerryDeliveryError {
  override readonly name = 'BodyEncodingError';
  readonly code = 'FERRY_BODY_ENCODING';
  readonly retryable = false;
  readonly encoding: 'json' | 'form';
  readonly path: string;

  constructor(encoding: 'json' | 'form', path: string, problem: string, options?: ErrorOptions) {
    super(`cannot ${encoding}-encode the body at ${path || '/'}: ${problem}`, options);
    this.encoding = encoding;
    this.path = path;
  }
}

/**
 * The OAuth2 token endpoint did not hand out a token. Retryable when the endpoint was unreachable
 * or answered 5xx/429; not when it refused the client (`invalid_client`, `invalid_scope`: 4xx) or
 * answered something that is not a bearer token. `oauthError` is the RFC 6749 `error` code; the
 * response body itself is never kept (it may echo secrets).
 */
export class AuthTokenError extends FerryDeliveryError {
  override readonly name = 'AuthTokenError';
  readonly code = 'FERRY_AUTH_TOKEN';
  readonly retryable: boolean;
  readonly tokenUrl: string;
  readonly status: number | undefined;
  readonly oauthError: string | undefined;

  constructor(
    fields: { tokenUrl: string; status?: number; oauthError?: string; retryable: boolean; detail: string },
    options?: ErrorOptions,
  ) {
    super(`OAuth2 token request to ${fields.tokenUrl} failed: ${fields.detail}`, options);
    this.tokenUrl = fields.tokenUrl;
    this.status = fields.status;
    this.oauthError = fields.oauthError;
    this.retryable = fields.retryable;
  }
}
