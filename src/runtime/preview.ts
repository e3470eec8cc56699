/**
 * One sample event through the pure steps of a pipeline — schema, transform, target URL,
 * idempotency key — with the same functions the pipeline runs, for `ferry validate --sample`:
 * what would be sent, where, with which key, or at which step and field the event would be parked.
 * Nothing is sent. A JSONata transform runs on this thread with the spec's time box (the pipeline
 * runs the same evaluator in a worker; a one-off preview needs no pool).
 */
import { describeValidationErrors, renderTemplate, type CompiledIntegrationSpec } from '../api/index.ts';
import { decodeEvent } from './decode.ts';
import { idempotencyKey, type IdempotencyKey } from './idempotency.ts';
import { applyMapping, runJsonata } from './transform.ts';

/** JSONata depth bound, as the pipeline's. */
const JSONATA_MAX_DEPTH = 200;

export interface EventPreview {
  /** The request body (the payload itself without a transform). */
  readonly body: unknown;
  readonly url: string;
  readonly idempotencyKey: IdempotencyKey;
}

/** Where the pipeline would park the event instead, and why. */
export interface PreviewFailure {
  /** `invalid` (schema, URL or key) or `transform`: the `Ferry-Reason` it would be parked with. */
  readonly reason: 'invalid' | 'transform';
  /** The step: `decode`, `schema`, `transform`, `url` or `idempotencyKey`. */
  readonly step: 'decode' | 'schema' | 'transform' | 'url' | 'idempotencyKey';
  /** ajv's `/field: message` list for the schema; the error otherwise. */
  readonly message: string;
}

export interface SampleEvent {
  /** The message payload as it would sit in the stream. */
  readonly payload: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Runs `event` through the compiled spec. `scope` is the Integration's `<namespace>/<name>` (the
 * default key's scope); the stream sequence of a sample is 0, so a key derived from it differs
 * from the one a real event gets (the preview says where a key came from).
 */
export async function previewEvent(spec: CompiledIntegrationSpec, scope: string, event: SampleEvent): Promise<{ ok: true; preview: EventPreview } | ({ ok: false } & PreviewFailure)> {
  const headers = event.headers ?? {};
  let data: unknown;
  let ceHeaders: Record<string, string> = {};
  try {
    const decoded = decodeEvent(event.payload, new Map(Object.entries(headers).map(([k, v]) => [k, [v]])), spec.config.source.format);
    data = decoded.data;
    if (decoded.cloudEvent) ceHeaders = { 'ce-source': decoded.cloudEvent.source, 'ce-id': decoded.cloudEvent.id };
  } catch (err) {
    return { ok: false, reason: 'invalid', step: 'decode', message: err instanceof Error ? err.message : String(err) };
  }
  if (spec.validate && !spec.validate(data)) return { ok: false, reason: 'invalid', step: 'schema', message: describeValidationErrors(spec.validate.errors) };
  let body: unknown;
  try {
    const t = spec.transform;
    const timeoutMs = spec.config.transform?.kind === 'jsonata' ? spec.config.transform.timeoutMs : 1_000;
    body = t === undefined ? data : t.kind === 'mapping' ? applyMapping(t, data) : await runJsonata(t, data, { timeoutMs, maxDepth: JSONATA_MAX_DEPTH });
  } catch (err) {
    return { ok: false, reason: 'transform', step: 'transform', message: err instanceof Error ? err.message : String(err) };
  }
  let url: string;
  try {
    url = renderTemplate(spec.url, data, 'url');
  } catch (err) {
    return { ok: false, reason: 'invalid', step: 'url', message: err instanceof Error ? err.message : String(err) };
  }
  try {
    const key = idempotencyKey({ stream: spec.config.source.stream, sequence: 0, headers: { ...headers, ...ceHeaders }, payload: data }, spec.idempotencyKey, scope);
    return { ok: true, preview: { body, url, idempotencyKey: key } };
  } catch (err) {
    return { ok: false, reason: 'invalid', step: 'idempotencyKey', message: err instanceof Error ? err.message : String(err) };
  }
}
