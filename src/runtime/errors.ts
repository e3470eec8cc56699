/**
 * Errors about an event's content, raised while the runtime decodes and transforms it. Match on
 * `code` (or `instanceof`), never on the message. None is retryable: the same bytes fail the same
 * way on every delivery, so the runtime parks the event in the fallback stream at once (reason
 * `invalid` for decode errors, `transform` for transform errors) instead of burning attempts.
 *
 * A plain list of classes: add new ones below, each with `name`, a stable `code`, `retryable` and
 * its context in readonly fields.
 */

/**
 * A message that is not the event its Integration's `spec.source.format` promises: not UTF-8,
 * not JSON, or not a CloudEvent 1.0. `reason` says which check failed; the message says what and
 * where (`payload is not valid JSON: unexpected '}' at position 6 (line 1, column 7)`).
 */
export class EventDecodeError extends Error {
  override readonly name = 'EventDecodeError';
  readonly code = 'FERRY_EVENT_DECODE';
  readonly retryable = false;
  readonly format: 'json' | 'cloudevents';
  /**
   * - `utf8`: the bytes are not UTF-8 (`offset` is the first bad byte);
   * - `json`: the text is not JSON (`offset` is the UTF-16 position in the text, when known);
   * - `base64`: a structured CloudEvent's `data_base64` is not base64;
   * - `not-cloudevent`: no `ce-` headers and the payload is not a JSON object;
   * - `missing-attributes`: required CloudEvents attributes are absent (listed in `attributes`);
   * - `invalid-attribute`: an attribute has the wrong type or value (named in `attributes`);
   * - `specversion`: a CloudEvents version other than 1.0;
   * - `content-type`: a content type Ferry cannot turn into data (not JSON nor text), or a
   *   CloudEvents event format other than JSON, or batch mode.
   */
  readonly reason:
    | 'utf8'
    | 'json'
    | 'base64'
    | 'not-cloudevent'
    | 'missing-attributes'
    | 'invalid-attribute'
    | 'specversion'
    | 'content-type';
  /** The CloudEvents attributes at fault, in spec order; empty for other reasons. */
  readonly attributes: readonly string[];
  /** Where in the payload (or in the decoded `data_base64`) the problem was found, if known. */
  readonly offset: number | undefined;

  constructor(
    format: 'json' | 'cloudevents',
    reason: EventDecodeError['reason'],
    message: string,
    context?: { readonly attributes?: readonly string[]; readonly offset?: number },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.format = format;
    this.reason = reason;
    this.attributes = context?.attributes ?? [];
    this.offset = context?.offset;
  }
}

/**
 * A JSONata transform that did not produce a value to deliver: the expression raised an error
 * (`reason: 'expression'`, with jsonata's `jsonataCode` such as `T2002` and the `position` in the
 * expression), matched nothing (`no-value`), or produced a function (`not-a-value`).
 */
export class TransformError extends Error {
  override readonly name = 'TransformError';
  readonly code = 'FERRY_TRANSFORM_FAILED';
  readonly retryable = false;
  readonly reason: 'expression' | 'no-value' | 'not-a-value';
  /** jsonata's error code (`T2002`, `D3001`…); undefined when the error did not come from jsonata. */
  readonly jsonataCode: string | undefined;
  /** Character position in the expression that jsonata blamed, if any. */
  readonly position: number | undefined;
  /** The token at that position, if jsonata named one. */
  readonly token: string | undefined;

  constructor(
    reason: TransformError['reason'],
    message: string,
    context?: { readonly jsonataCode?: string; readonly position?: number; readonly token?: string },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.reason = reason;
    this.jsonataCode = context?.jsonataCode;
    this.position = context?.position;
    this.token = context?.token;
  }
}

/** A JSONata transform that ran past its time box (`spec.transform.timeout`) and was stopped. */
export class TransformTimeoutError extends Error {
  override readonly name = 'TransformTimeoutError';
  readonly code = 'FERRY_TRANSFORM_TIMEOUT';
  readonly retryable = false;
  readonly timeoutMs: number;
  /** Time measured when the expression was stopped; at least `timeoutMs`. */
  readonly elapsedMs: number;

  constructor(timeoutMs: number, elapsedMs: number, options?: ErrorOptions) {
    super(`transform expression ran for ${Math.round(elapsedMs)} ms, over its ${timeoutMs} ms limit, and was stopped`, options);
    this.timeoutMs = timeoutMs;
    this.elapsedMs = elapsedMs;
  }
}

/**
 * A JSONata transform whose evaluation nested deeper than the runtime allows (typically unbounded
 * recursion) and was stopped before it could exhaust memory.
 */
export class TransformDepthError extends Error {
  override readonly name = 'TransformDepthError';
  readonly code = 'FERRY_TRANSFORM_DEPTH';
  readonly retryable = false;
  readonly maxDepth: number;

  constructor(maxDepth: number, options?: ErrorOptions) {
    super(`transform expression nested deeper than ${maxDepth} evaluation steps (unbounded recursion?) and was stopped`, options);
    this.maxDepth = maxDepth;
  }
}

/**
 * A `mapping` transform that cannot build its output for this event:
 * - `unsafe-key`: an output path has a `__proto__` segment, which Ferry never writes (a later
 *   `Object.assign` of the output would change an object's prototype);
 * - `conflict`: two output paths collide: both set the same field, or one writes inside a field
 *   that another already set to a value.
 * Both are mapping mistakes that only show on events where the fields involved are present.
 */
export class MappingError extends Error {
  override readonly name = 'MappingError';
  readonly code = 'FERRY_TRANSFORM_MAPPING';
  readonly retryable = false;
  readonly reason: 'unsafe-key' | 'conflict';
  /** The output path at fault, as a JSON Pointer (`/customer/ref`). */
  readonly path: string;

  constructor(reason: MappingError['reason'], path: string, message: string) {
    super(message);
    this.reason = reason;
    this.path = path;
  }
}

/**
 * A JSONata transform that never started: no transform worker became free within the pool's
 * queue bound (`maxQueueWaitMs`). The pool is shared by every Integration on this replica, so
 * this means it is saturated: more `--transform-workers`, or shorter transform time boxes.
 */
export class TransformQueueTimeoutError extends Error {
  override readonly name = 'TransformQueueTimeoutError';
  readonly code = 'FERRY_TRANSFORM_QUEUE_TIMEOUT';
  readonly retryable = false;
  readonly waitedMs: number;
  /** Tasks still waiting when this one gave up. */
  readonly queued: number;

  constructor(waitedMs: number, queued: number, options?: ErrorOptions) {
    super(`no transform worker became free within ${Math.round(waitedMs)} ms (${queued} more transforms waiting); the event was not transformed`, options);
    this.waitedMs = waitedMs;
    this.queued = queued;
  }
}

/**
 * A JSONata transform whose worker thread died under it (out of memory: `resourceLimits`, or a
 * crash), or could not be started (`reason: 'start'`). The worker is replaced; the event is not
 * retried, since the same event would most likely do the same again.
 */
export class TransformWorkerError extends Error {
  override readonly name = 'TransformWorkerError';
  readonly code = 'FERRY_TRANSFORM_WORKER';
  readonly retryable = false;
  readonly reason: 'exited' | 'start';

  constructor(reason: TransformWorkerError['reason'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}
