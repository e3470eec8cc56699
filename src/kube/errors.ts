/**
 * Typed errors of src/kube. Every failure that crosses this folder's boundary is one of these
 * classes: callers branch on the class (or `code`) and on `retryable`, never on message text.
 *
 * HTTP answers of the API server are translated in one place, {@link errorFromStatus}, from the
 * status code and the `reason` of the `Status` body the server sends.
 */

/** The `Status` object the API server returns with a failed request (fields we read). */
export interface KubeStatus {
  readonly kind?: string;
  readonly status?: string;
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: {
    readonly name?: string;
    readonly kind?: string;
    readonly causes?: readonly { readonly field?: string; readonly message?: string; readonly reason?: string }[];
    readonly retryAfterSeconds?: number;
  };
}

/** Base class of every error thrown by src/kube. */
export abstract class KubeError extends Error {
  /** A stable identifier, safe to match on and to put in metrics. */
  abstract readonly code: string;
  /** True when repeating the same operation later may succeed. */
  abstract readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where a failed API request went: included in every {@link KubeApiError}. */
export interface RequestInfo {
  readonly method: string;
  readonly path: string;
}

/**
 * A request the API server answered with a failure, or one that never got an answer
 * ({@link UnavailableError} with no `httpStatus`).
 */
export abstract class KubeApiError extends KubeError {
  readonly httpStatus: number | undefined;
  /** The `reason` of the server's `Status` (e.g. `NotFound`, `Conflict`, `Expired`), if any. */
  readonly reason: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly status: KubeStatus | undefined;

  constructor(
    message: string,
    init: RequestInfo & { httpStatus?: number; status?: KubeStatus; cause?: unknown },
  ) {
    super(message, { cause: init.cause });
    this.httpStatus = init.httpStatus;
    this.reason = init.status?.reason;
    this.method = init.method;
    this.path = init.path;
    this.status = init.status;
  }
}

/** 404: the object (or its namespace, or the resource type) does not exist. */
export class NotFoundError extends KubeApiError {
  readonly code = 'KUBE_NOT_FOUND';
  readonly retryable = false;
}

/** 409 with reason `AlreadyExists`: a create raced with another writer. */
export class AlreadyExistsError extends KubeApiError {
  readonly code = 'KUBE_ALREADY_EXISTS';
  readonly retryable = false;
}

/**
 * 409 (any other reason): the resourceVersion precondition failed because someone else wrote
 * first. Retryable after reading the object again.
 */
export class ConflictError extends KubeApiError {
  readonly code = 'KUBE_CONFLICT';
  readonly retryable = true;
}

/** 422: the server rejected the object as invalid. `status.details.causes` names the fields. */
export class InvalidError extends KubeApiError {
  readonly code = 'KUBE_INVALID';
  readonly retryable = false;
}

/**
 * 410: the resourceVersion (or continue token) asked for has been compacted away. Retryable by
 * starting over from a fresh list, never by repeating the same request.
 */
export class GoneError extends KubeApiError {
  readonly code = 'KUBE_GONE';
  readonly retryable = true;
}

/** 400: a malformed request (a bug on our side, or a bad selector). */
export class BadRequestError extends KubeApiError {
  readonly code = 'KUBE_BAD_REQUEST';
  readonly retryable = false;
}

/** 401: the credentials were not accepted. */
export class UnauthorizedError extends KubeApiError {
  readonly code = 'KUBE_UNAUTHORIZED';
  readonly retryable = false;
}

/** 403: RBAC does not allow this request. */
export class ForbiddenError extends KubeApiError {
  readonly code = 'KUBE_FORBIDDEN';
  readonly retryable = false;
}

/**
 * The API server could not be reached, timed out, throttled us (429) or failed (5xx).
 * `retryAfterMs` carries the server's Retry-After when it sent one.
 */
export class UnavailableError extends KubeApiError {
  readonly code = 'KUBE_UNAVAILABLE';
  readonly retryable = true;
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    init: RequestInfo & { httpStatus?: number; status?: KubeStatus; cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, init);
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** Any other HTTP failure; retryable when the status is 5xx. */
export class UnexpectedStatusError extends KubeApiError {
  readonly code = 'KUBE_UNEXPECTED_STATUS';
  readonly retryable: boolean;

  constructor(message: string, init: RequestInfo & { httpStatus: number; status?: KubeStatus; cause?: unknown }) {
    super(message, init);
    this.retryable = init.httpStatus >= 500;
  }
}

/** The API server answered 2xx with a body that is not the JSON we asked for. */
export class MalformedResponseError extends KubeError {
  readonly code = 'KUBE_MALFORMED_RESPONSE';
  readonly retryable = true;
}

/** Options or the kubeconfig are unusable; found at construction or start, never retryable. */
export class KubeConfigError extends KubeError {
  readonly code = 'KUBE_CONFIG';
  readonly retryable = false;
}

/**
 * Thrown by a reconciler to say "retrying will not help" (for example an invalid spec): the
 * controller logs and counts it and does NOT requeue the key. A later change to the object
 * enqueues it again.
 */
export class TerminalError extends KubeError {
  readonly code = 'RECONCILE_TERMINAL';
  readonly retryable = false;
}

/**
 * Translates a failed HTTP answer of the API server into its typed error. Pure; the only place
 * that maps status codes and `Status.reason` to classes.
 */
export function errorFromStatus(
  httpStatus: number,
  status: KubeStatus | undefined,
  request: RequestInfo,
  retryAfterMs?: number,
): KubeApiError {
  const what = `${request.method} ${request.path}`;
  const detail = status?.message ?? `HTTP ${httpStatus}`;
  const message = `${what}: ${detail}`;
  const init = { ...request, httpStatus, status };
  switch (httpStatus) {
    case 400:
      return new BadRequestError(message, init);
    case 401:
      return new UnauthorizedError(message, init);
    case 403:
      return new ForbiddenError(message, init);
    case 404:
      return new NotFoundError(message, init);
    case 409:
      return status?.reason === 'AlreadyExists' ? new AlreadyExistsError(message, init) : new ConflictError(message, init);
    case 410:
      return new GoneError(message, init);
    case 422:
      return new InvalidError(message, init);
    case 429:
    case 500:
    case 502:
    case 503:
    case 504: {
      const fromBody = status?.details?.retryAfterSeconds;
      const after = retryAfterMs ?? (fromBody === undefined ? undefined : fromBody * 1000);
      return new UnavailableError(message, after === undefined ? init : { ...init, retryAfterMs: after });
    }
    default:
      return new UnexpectedStatusError(message, init);
  }
}

/** True for a {@link NotFoundError}. */
export function isNotFound(err: unknown): err is NotFoundError {
  return err instanceof NotFoundError;
}

/** True for a {@link ConflictError} (not {@link AlreadyExistsError}). */
export function isConflict(err: unknown): err is ConflictError {
  return err instanceof ConflictError;
}

/** True for a {@link GoneError}. */
export function isGone(err: unknown): err is GoneError {
  return err instanceof GoneError;
}

/** True when `err` is one of ours and says a later retry may succeed; unknown errors count as retryable. */
export function isRetryable(err: unknown): boolean {
  return err instanceof KubeError ? err.retryable : true;
}

/** Wraps anything thrown (strings, plain objects) into an Error, keeping Errors as they are. */
export function toError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(typeof err === 'string' ? err : 'non-Error value thrown', { cause: err });
}
