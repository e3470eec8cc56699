/**
 * The idempotency key of an event: the value of the `Idempotency-Key` header (or the header the
 * spec names) on every attempt of every delivery of that event. A pure function of the event and
 * the Integration, so retries, redeliveries after a crash, and redrives from the fallback stream
 * all send the same key and a target that honours keys applies the event once.
 */
import { createHash } from 'node:crypto';
import { renderTemplate, TemplateValueError, type CompiledTemplate } from '../api/index.ts';

/** What the key is derived from: the message as it sits in its stream. */
export interface KeyedEvent {
  readonly stream: string;
  /** The stream sequence of the message. */
  readonly sequence: number;
  /** Message headers; names are matched case-insensitively. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The parsed payload (before transform), against which a key template is rendered. */
  readonly payload: unknown;
}

/** Where a key came from, for logs and tests. */
export type IdempotencyKeySource = 'template' | 'redrive' | 'nats-msg-id' | 'cloudevents' | 'sequence';

/** A derived key and where it came from. */
export interface IdempotencyKey {
  readonly key: string;
  readonly source: IdempotencyKeySource;
}

/** The header a fallback message carries its key in; a redrive reuses it. */
export const FERRY_IDEMPOTENCY_KEY_HEADER = 'Ferry-Idempotency-Key';

/**
 * Longest key sent. Stripe and most APIs that honour keys accept 255 characters; a longer
 * default key is replaced by a hash of itself (still one key per event and Integration).
 */
export const MAX_KEY_LENGTH = 255;

/**
 * Derives the key, first match wins:
 * 1. the spec's key template (`spec.target.idempotency.key`), rendered against the payload — used
 *    as written: the user chose it, possibly to match keys another system already sends;
 * 2. `Ferry-Idempotency-Key` — set on fallback messages, so a redrive (a new stream sequence)
 *    keeps the key of the original attempts;
 * 3. `Nats-Msg-Id` (the publisher's dedup id);
 * 4. CloudEvents `source` + `id` (binary mode `ce-source`/`ce-id` headers, or a structured-mode
 *    payload with `specversion`), as `<source>:<id>` with both parts percent-encoded so the pair
 *    is unambiguous;
 * 5. `<stream>:<sequence>`.
 * Defaults 3–5 are scoped by the Integration (`scope`, `<namespace>/<name>`): two Integrations
 * that consume the same stream and call the same API never share a key, so neither is answered
 * with the other's replay (or a 422) and silently not applied.
 * @throws TemplatePointerMissingError / TemplateValueError when the template does not render for
 *   this event (or renders an empty key): the event is parked, never sent without its key.
 */
export function idempotencyKey(event: KeyedEvent, template: CompiledTemplate | undefined, scope: string): IdempotencyKey {
  if (template) {
    const key = renderTemplate(template, event.payload, 'none');
    if (key === '') throw new TemplateValueError(template.source, 'renders an empty idempotency key');
    return { key, source: 'template' };
  }
  const header = headerLookup(event.headers);
  const redrive = header(FERRY_IDEMPOTENCY_KEY_HEADER);
  if (redrive) return { key: redrive, source: 'redrive' };
  const msgId = header('Nats-Msg-Id');
  if (msgId) return { key: scoped(scope, msgId), source: 'nats-msg-id' };
  const ce = cloudEventIdentity(header, event.payload);
  if (ce) return { key: scoped(scope, `${encodeURIComponent(ce.source)}:${encodeURIComponent(ce.id)}`), source: 'cloudevents' };
  return { key: scoped(scope, `${event.stream}:${event.sequence}`), source: 'sequence' };
}

function scoped(scope: string, base: string): string {
  const key = `${scope}/${base}`;
  if (key.length <= MAX_KEY_LENGTH) return key;
  return `${scope.length <= 160 ? scope : 'ferry'}/sha256:${createHash('sha256').update(key).digest('hex')}`;
}

function cloudEventIdentity(
  header: (name: string) => string | undefined,
  payload: unknown,
): { source: string; id: string } | undefined {
  const source = header('ce-source');
  const id = header('ce-id');
  if (source && id) return { source, id };
  if (typeof payload === 'object' && payload !== null && !Array.isArray(payload)) {
    const p = payload as Record<string, unknown>;
    if (typeof p.specversion === 'string' && typeof p.source === 'string' && typeof p.id === 'string') {
      if (p.source !== '' && p.id !== '') return { source: p.source, id: p.id };
    }
  }
  return undefined;
}

function headerLookup(headers: Readonly<Record<string, string | undefined>>): (name: string) => string | undefined {
  // A scan per lookup, no index built: it runs for every event, events carry a handful of
  // headers and at most four names are looked up. The last of two names differing only in case wins.
  const names = Object.keys(headers);
  return (name) => {
    const wanted = name.toLowerCase();
    let found: string | undefined;
    for (const k of names) if (k.toLowerCase() === wanted) found = headers[k];
    return found || undefined;
  };
}
