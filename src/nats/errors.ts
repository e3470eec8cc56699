/**
 * NATS failures as Ferry errors. Foreign errors are translated here, at the boundary, by their
 * codes — never by message text — so callers decide on `code` and `retryable` alone.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { errors as coreErrors } from '@nats-io/transport-node';

export abstract class FerryNatsError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
}

/** The NATS server cannot be reached or the request timed out; trying again later may work. */
export class NatsUnavailableError extends FerryNatsError {
  override readonly name = 'NatsUnavailableError';
  readonly code = 'NATS_UNAVAILABLE';
  readonly retryable = true;
}

/**
 * NATS refused Ferry's credentials (authorization violation, expired or revoked user). Not
 * retryable: the same credentials fail the same way until someone changes them.
 */
export class NatsAuthError extends FerryNatsError {
  override readonly name = 'NatsAuthError';
  readonly code = 'NATS_AUTH';
  readonly retryable = false;
}

/** A user's stream that cannot serve a spec as it stands; `stream` names it for the condition message. */
abstract class UserStreamError extends FerryNatsError {
  readonly retryable = false;
  readonly stream: string;
  constructor(stream: string, what: string, options?: ErrorOptions) {
    super(`stream ${JSON.stringify(stream)} ${what}`, options);
    this.stream = stream;
  }
}

/** A stream that a spec names does not exist (and the spec did not ask Ferry to create it). */
export class StreamNotFoundError extends UserStreamError {
  override readonly name = 'StreamNotFoundError';
  readonly code = 'STREAM_NOT_FOUND';
  constructor(stream: string, options?: ErrorOptions) {
    super(stream, 'not found', options);
  }
}

/**
 * A stream refused one more consumer: its `max_consumers` is reached (nats-server 2.15 gives a
 * stream 1,000 unless it sets its own, and every Integration is one durable consumer on its
 * source stream). Nothing Ferry can change: the stream is the user's.
 */
export class ConsumerLimitError extends UserStreamError {
  override readonly name = 'ConsumerLimitError';
  readonly code = 'CONSUMER_LIMIT';
  constructor(stream: string, options?: ErrorOptions) {
    super(stream, 'refused another consumer: its max_consumers is reached', options);
  }
}

/** A KV watch stopped receiving changes the bucket has (its consumer's node died); it is re-created. */
export class KvWatchStalledError extends FerryNatsError {
  override readonly name = 'KvWatchStalledError';
  readonly code = 'KV_WATCH_STALLED';
  readonly retryable = true;
}

/** JetStream refused a request (bad config, limits); the server's code is kept. */
export class JetStreamRequestError extends FerryNatsError {
  override readonly name = 'JetStreamRequestError';
  readonly code = 'JETSTREAM_REQUEST';
  readonly retryable: boolean;
  readonly apiCode: number;
  readonly httpStatus: number;
  constructor(message: string, apiCode: number, httpStatus: number, options?: ErrorOptions) {
    super(message, options);
    this.apiCode = apiCode;
    this.httpStatus = httpStatus;
    // 5xx-like statuses from the JetStream API are the server's trouble, not the request's.
    this.retryable = httpStatus >= 500 || httpStatus === 408;
  }
}

export function isConsumerNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

/** A compare-and-set lost: the key's revision was not the expected one. */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === 10164);
}

/** A message asked for by sequence is not (or no longer) in its stream (10037; 10057 on delete). */
export function isMessageGone(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.NoMessageFound || err.code === 10057);
}

/** 10026: JSMaximumConsumersLimitErr. */
export function isConsumerLimit(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === 10026;
}

/**
 * 10158: JSStreamDuplicateMessageConflict, a publish whose `Nats-Msg-Id` an earlier try is still
 * storing (a retry after a timeout, while a cluster replicates the first try).
 */
export function isDuplicateInProcess(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === 10158;
}

/** The request reached no server (nats.js reports a publish's no-responders as its cause). */
export function isNoResponders(err: unknown): boolean {
  const cause = err instanceof Error ? err.cause : undefined;
  return (err instanceof coreErrors.RequestError && err.isNoResponders()) || (cause instanceof coreErrors.RequestError && cause.isNoResponders());
}

export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/** Maps any error from @nats-io/* to a Ferry error; Ferry errors pass through unchanged. */
export function translateNatsError(err: unknown, context: string): Error {
  if (err instanceof FerryNatsError) return err;
  if (err instanceof JetStreamApiError) {
    return new JetStreamRequestError(`${context}: ${err.message}`, err.code, err.status, { cause: err });
  }
  if (err instanceof coreErrors.AuthorizationError || err instanceof coreErrors.UserAuthenticationExpiredError) {
    return new NatsAuthError(`${context}: NATS refused the credentials (${err.message})`, { cause: err });
  }
  if (
    err instanceof coreErrors.TimeoutError ||
    err instanceof coreErrors.ConnectionError ||
    err instanceof coreErrors.ClosedConnectionError ||
    err instanceof coreErrors.NoRespondersError ||
    err instanceof coreErrors.RequestError ||
    err instanceof coreErrors.DrainingConnectionError
  ) {
    return new NatsUnavailableError(`${context}: ${err.message}`, { cause: err });
  }
  if (err instanceof Error) return new NatsUnavailableError(`${context}: ${err.message}`, { cause: err });
  return new NatsUnavailableError(`${context}: unknown error`, { cause: err });
}
