/**
 * What happens to an event before its first attempt, and how an answer is read: decode, validate,
 * transform, render the URL and the idempotency key; then a response judged against
 * `successCodes` and `responseSchema`. One implementation for the pipeline (events from the
 * source stream) and for redrive (events replayed from the fallback stream), so a redriven event
 * is treated exactly as a new one would be by the same generation.
 */
import { describeValidationErrors, renderTemplate } from '../api/index.ts';
import { outcomeOfError, parseRetryAfter, type Deliverer, type DeliveryOutcome, type DeliveryResponse } from '../delivery/index.ts';
import type { CompiledIntegration } from './compile-integration.ts';
import { decodeEvent } from './decode.ts';
import { idempotencyKey } from './idempotency.ts';
import { applyMapping } from './transform.ts';
import type { JsonataEvaluator } from './transform-pool.ts';

/** A JSONata expression's budget when the spec sets none is the api default; depth is ours. */
const JSONATA_MAX_DEPTH = 200;

/** The event as it sits in a stream. */
export interface EventInput {
  readonly stream: string;
  readonly sequence: number;
  readonly data: Uint8Array;
  readonly headers: ReadonlyMap<string, readonly string[]> | undefined;
  /** A key decided already (a redrive reuses the parked event's key); otherwise it is derived. */
  readonly key?: string | undefined;
}

export type Prepared =
  | { readonly kind: 'ready'; readonly url: string; readonly key: string; readonly body: unknown }
  /** The event's own problem, never retried: park it with this reason. */
  | { readonly kind: 'park'; readonly reason: 'invalid' | 'transform'; readonly error: string };

/**
 * Decodes, validates and transforms one event. Returns synchronously unless a JSONata transform
 * has to run in the worker pool: a mapping (the common case) costs no promise hop.
 */
export function prepareEvent(c: CompiledIntegration, event: EventInput, transforms: JsonataEvaluator): Prepared | Promise<Prepared> {
  let data: unknown;
  let ceHeaders: Record<string, string> | undefined;
  try {
    const decoded = decodeEvent(event.data, event.headers, c.config.source.format);
    data = decoded.data;
    if (decoded.cloudEvent) ceHeaders = { 'ce-source': decoded.cloudEvent.source, 'ce-id': decoded.cloudEvent.id };
  } catch (err) {
    return { kind: 'park', reason: 'invalid', error: errorMessage(err) };
  }
  if (c.validate && !c.validate(data)) return { kind: 'park', reason: 'invalid', error: describeValidationErrors(c.validate.errors) };
  // A mapping runs synchronously: no promise hop on the common path. JSONata is user code that a
  // step check cannot always stop (one backtracking regex): it runs in a worker that is
  // terminated at its deadline, so it can never block this thread. No transform: the payload is the body.
  if (c.transform?.kind === 'jsonata') {
    const source = c.transform.source;
    return transforms
      .evaluate({
        key: `${c.namespace}/${c.name}`,
        source,
        data,
        limits: { timeoutMs: c.config.transform?.kind === 'jsonata' ? c.config.transform.timeoutMs : 1_000, maxDepth: JSONATA_MAX_DEPTH },
      })
      .then(
        (body) => addressed(c, event, data, ceHeaders, body),
        (err: unknown): Prepared => ({ kind: 'park', reason: 'transform', error: errorMessage(err) }),
      );
  }
  let body: unknown;
  try {
    body = c.transform === undefined ? data : applyMapping(c.transform, data);
  } catch (err) {
    return { kind: 'park', reason: 'transform', error: errorMessage(err) };
  }
  return addressed(c, event, data, ceHeaders, body);
}

function addressed(c: CompiledIntegration, event: EventInput, data: unknown, ceHeaders: Record<string, string> | undefined, body: unknown): Prepared {
  try {
    const url = renderTemplate(c.url, data, 'url');
    const key =
      event.key ??
      idempotencyKey({ stream: event.stream, sequence: event.sequence, headers: ceHeaders ? { ...flatHeaders(event.headers), ...ceHeaders } : flatHeaders(event.headers), payload: data }, c.idempotencyKey, c.keyScope).key;
    return { kind: 'ready', url, key, body };
  } catch (err) {
    return { kind: 'park', reason: 'invalid', error: errorMessage(err) };
  }
}

/** A response as the failure contract sees it: its status (and Retry-After), or a contract failure. */
export function responseOutcome(c: CompiledIntegration, response: DeliveryResponse, now: number): { outcome: DeliveryOutcome; detail: string } {
  const retryAfter = response.headers['retry-after'];
  const retryAfterMs = retryAfter === undefined ? undefined : parseRetryAfter(retryAfter, { now, maxMs: c.config.delivery.retryAfterMaxMs });
  if (c.validateResponse && c.config.target.successCodes.includes(response.status)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(response.body);
    } catch {
      return { outcome: { kind: 'contract', status: response.status }, detail: `HTTP ${response.status}: response body is not JSON, spec.target.responseSchema expects JSON` };
    }
    if (!c.validateResponse(parsed)) {
      return {
        outcome: { kind: 'contract', status: response.status },
        detail: `HTTP ${response.status}: response breaks spec.target.responseSchema: ${describeValidationErrors(c.validateResponse.errors)}`,
      };
    }
  }
  return { outcome: { kind: 'status', status: response.status, retryAfterMs }, detail: `HTTP ${response.status}` };
}

/** One attempt's result: the outcome the contract judges, and the response if there was one. */
export interface Attempted {
  readonly outcome: DeliveryOutcome;
  readonly detail: string;
  readonly response: DeliveryResponse | undefined;
  /** True when no response came (network error, timeout, refused address). */
  readonly threw: boolean;
}

/**
 * Sends one attempt of a prepared event with `send` (the caller passes the current credentials'
 * deliverer) and the target settings of generation `c`. Never throws: a failure is an outcome.
 */
export async function sendAttempt(send: Deliverer, c: CompiledIntegration, event: { readonly url: string; readonly key: string; readonly body: unknown }, now: () => number): Promise<Attempted> {
  try {
    const response = await send.deliver({
      url: event.url,
      method: c.config.target.method,
      headers: c.config.target.headers,
      body: { encoding: c.config.target.encoding, value: event.body },
      idempotencyKey: event.key,
      idempotencyHeader: c.config.target.idempotency.header,
      timeoutMs: c.config.target.timeoutMs,
    });
    return { ...responseOutcome(c, response, now()), response, threw: false };
  } catch (err) {
    return { outcome: outcomeOfError(err), detail: errorMessage(err), response: undefined, threw: true };
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function flatHeaders(headers: ReadonlyMap<string, readonly string[]> | undefined): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (headers) for (const [k, v] of headers) out[k] = v[0];
  return out;
}
