/**
 * Webhook signature verification: pure functions over the raw body bytes, the request headers
 * and the signing keys. Called before anything parses the body. Every comparison is
 * `crypto.timingSafeEqual` on equal-length digests (a candidate of another length is refused
 * without comparing), so the time taken says nothing about how close a forgery came.
 *
 * Hand-written over node:crypto rather than with the `standardwebhooks` package: it covers three
 * schemes with one code path and one HMAC per key; the package is used in the unit tests to
 * prove the Standard Webhooks implementation interoperates.
 */
import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { ResolvedWebhook } from '../api/index.ts';

type Signature = ResolvedWebhook['signature'];

/** Request headers as Node gives them: lower-case names. */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

export type Verdict =
  | {
      readonly ok: true;
      /** The scheme's own delivery id (`webhook-id`), when it has one. */
      readonly schemeId: string | undefined;
      /** The signed timestamp in seconds, when the scheme signs one. */
      readonly timestamp: string | undefined;
      /** Which of the keys signed it (0 = the first tried). */
      readonly keyIndex: number;
    }
  | {
      readonly ok: false;
      /** `malformed` → 400 (a header the scheme needs is absent or unreadable); `unauthorized` → 401. */
      readonly outcome: 'malformed' | 'unauthorized';
      /** Why, for the log and the response; never a signature or a secret. */
      readonly detail: string;
    };

const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const TIMESTAMP = /^\d{1,15}$/;

/**
 * The HMAC key of each secret as the scheme defines it: Standard Webhooks decodes the base64
 * after `whsec_`; Stripe and plain HMAC schemes use the secret's bytes as they are. Surrounding
 * whitespace (a newline from `kubectl create secret --from-file`) is dropped; an empty secret
 * gives no key (nothing verifies against it).
 *
 * KeyObjects, made once per generation: `createHmac` with a Buffer key builds a KeyObject on
 * every call, which cost ~30 µs per HMAC on Node 24 against ~5 µs with a prepared one.
 */
export function signingKeys(scheme: Signature['scheme'], secrets: readonly string[]): KeyObject[] {
  const keys: KeyObject[] = [];
  for (const raw of secrets) {
    const secret = raw.trim();
    const bytes = scheme === 'standardWebhooks' ? Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64') : Buffer.from(secret, 'utf8');
    if (bytes.length > 0) keys.push(createSecretKey(bytes));
  }
  return keys;
}

function header(headers: RequestHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function decode(text: string, encoding: 'hex' | 'base64'): Buffer | undefined {
  if (!(encoding === 'hex' ? HEX : BASE64).test(text)) return undefined;
  return Buffer.from(text, encoding);
}

/** The index of the first key under which a candidate equals the HMAC of `parts`, or -1. */
function matchingKey(algorithm: Signature['algorithm'], keys: readonly KeyObject[], parts: readonly (string | Uint8Array)[], candidates: readonly Buffer[]): number {
  for (let i = 0; i < keys.length; i++) {
    const mac = createHmac(algorithm, keys[i] as KeyObject);
    for (const p of parts) mac.update(p);
    const digest = mac.digest();
    for (const c of candidates) if (c.length === digest.length && timingSafeEqual(c, digest)) return i;
  }
  return -1;
}

function checkTimestamp(text: string, nowMs: number, toleranceMs: number): Verdict | undefined {
  if (!TIMESTAMP.test(text)) return { ok: false, outcome: 'malformed', detail: 'the signed timestamp is not a number of seconds' };
  const skew = nowMs - Number(text) * 1000;
  if (skew > toleranceMs) return { ok: false, outcome: 'unauthorized', detail: 'the signed timestamp is older than the tolerance (a replay?)' };
  if (-skew > toleranceMs) return { ok: false, outcome: 'unauthorized', detail: 'the signed timestamp is further in the future than the tolerance' };
  return undefined;
}

function standardWebhooks(headers: RequestHeaders, body: Uint8Array, keys: readonly KeyObject[], nowMs: number, toleranceMs: number): Verdict {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signature = header(headers, 'webhook-signature');
  if (id === undefined || id === '') return { ok: false, outcome: 'malformed', detail: 'webhook-id header missing' };
  if (timestamp === undefined) return { ok: false, outcome: 'malformed', detail: 'webhook-timestamp header missing' };
  if (signature === undefined) return { ok: false, outcome: 'unauthorized', detail: 'webhook-signature header missing' };
  const stale = checkTimestamp(timestamp, nowMs, toleranceMs);
  if (stale) return stale;
  const candidates: Buffer[] = [];
  for (const item of signature.split(' ')) {
    // `v1,<base64>`; other versions (v1a: asymmetric) are skipped, as the spec says.
    if (!item.startsWith('v1,')) continue;
    const bytes = decode(item.slice(3), 'base64');
    if (bytes) candidates.push(bytes);
  }
  const keyIndex = matchingKey('sha256', keys, [`${id}.${timestamp}.`, body], candidates);
  if (keyIndex < 0) return { ok: false, outcome: 'unauthorized', detail: 'no v1 signature matches' };
  return { ok: true, schemeId: id, timestamp, keyIndex };
}

function stripe(headers: RequestHeaders, body: Uint8Array, keys: readonly KeyObject[], nowMs: number, toleranceMs: number): Verdict {
  const value = header(headers, 'stripe-signature');
  if (value === undefined) return { ok: false, outcome: 'unauthorized', detail: 'Stripe-Signature header missing' };
  let timestamp: string | undefined;
  const candidates: Buffer[] = [];
  for (const item of value.split(',')) {
    const eq = item.indexOf('=');
    const k = item.slice(0, eq).trim();
    const v = item.slice(eq + 1).trim();
    if (k === 't') timestamp = v;
    else if (k === 'v1') {
      const bytes = decode(v, 'hex');
      if (bytes) candidates.push(bytes);
    }
  }
  if (timestamp === undefined) return { ok: false, outcome: 'malformed', detail: 'Stripe-Signature has no t= timestamp' };
  const stale = checkTimestamp(timestamp, nowMs, toleranceMs);
  if (stale) return stale;
  const keyIndex = matchingKey('sha256', keys, [`${timestamp}.`, body], candidates);
  if (keyIndex < 0) return { ok: false, outcome: 'unauthorized', detail: 'no v1 signature matches' };
  return { ok: true, schemeId: undefined, timestamp, keyIndex };
}

function hmac(signature: Signature, headers: RequestHeaders, body: Uint8Array, keys: readonly KeyObject[]): Verdict {
  const value = header(headers, signature.header);
  if (value === undefined) return { ok: false, outcome: 'unauthorized', detail: `${signature.header} header missing` };
  const trimmed = value.trim();
  if (!trimmed.startsWith(signature.prefix)) return { ok: false, outcome: 'unauthorized', detail: `${signature.header} does not start with the configured prefix` };
  const bytes = decode(trimmed.slice(signature.prefix.length), signature.encoding);
  const keyIndex = bytes ? matchingKey(signature.algorithm, keys, [body], [bytes]) : -1;
  if (keyIndex < 0) return { ok: false, outcome: 'unauthorized', detail: `${signature.header} does not match` };
  return { ok: true, schemeId: undefined, timestamp: undefined, keyIndex };
}

/**
 * Verifies one request. `keys` from {@link signingKeys} (one or two: rotation). `nowMs` from the
 * injected clock; `toleranceMs` bounds the signed timestamp both ways (schemes that sign one).
 */
export function verifySignature(signature: Signature, headers: RequestHeaders, body: Uint8Array, keys: readonly KeyObject[], nowMs: number, toleranceMs: number): Verdict {
  switch (signature.scheme) {
    case 'standardWebhooks':
      return standardWebhooks(headers, body, keys, nowMs, toleranceMs);
    case 'stripe':
      return stripe(headers, body, keys, nowMs, toleranceMs);
    case 'hmac':
      return hmac(signature, headers, body, keys);
  }
}

/** Largest delivery id used for deduplication; longer ones are refused as malformed. */
export const MAX_ID_LENGTH = 256;

/**
 * The id a redelivery of the same webhook shares, in order: the configured id header (or
 * `webhook-id`), Stripe's event id (`id` of the JSON body), else a SHA-256 of the signed
 * timestamp and the body — so an unsigned-time scheme (plain HMAC) dedupes identical bodies
 * within the stream's duplicate window. `undefined`: the id header is required but absent.
 */
export function deliveryId(webhook: ResolvedWebhook, headers: RequestHeaders, verdict: Extract<Verdict, { ok: true }>, body: Uint8Array, parsed: unknown): string | undefined {
  if (webhook.idHeader !== undefined) {
    const v = header(headers, webhook.idHeader);
    return v === undefined || v === '' || v.length > MAX_ID_LENGTH ? undefined : v;
  }
  if (webhook.signature.scheme === 'stripe' && typeof parsed === 'object' && parsed !== null && 'id' in parsed && typeof parsed.id === 'string' && parsed.id !== '' && parsed.id.length <= MAX_ID_LENGTH) {
    return parsed.id;
  }
  return `sha256:${createHash('sha256').update(`${verdict.timestamp ?? ''}.`).update(body).digest('hex')}`;
}
