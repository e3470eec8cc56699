/**
 * Request body encodings: JSON, and `application/x-www-form-urlencoded` with nested keys the way
 * Stripe-style APIs expect (`customer[address][city]=Berlin`, `items[0][price]=p_1`). Pure.
 *
 * The form encoder is hand-written (not `qs`) because it is ~40 lines and the exact shape is the
 * contract: bracketed keys left unescaped, values percent-encoded (RFC 3986), arrays indexed.
 */
import { BodyEncodingError } from './errors.ts';

export type BodyEncoding = 'json' | 'form';

/** An encoded body and the Content-Type that describes it. */
export interface EncodedBody {
  readonly contentType: string;
  readonly payload: string;
}

/**
 * Encodes `value` for the wire. Called once per attempt with the transformed event.
 * @throws BodyEncodingError when the value cannot be expressed (see {@link encodeForm}; for JSON,
 *   a BigInt or a cycle).
 */
export function encodeBody(value: unknown, encoding: BodyEncoding): EncodedBody {
  if (encoding === 'form') {
    return { contentType: 'application/x-www-form-urlencoded', payload: encodeForm(value) };
  }
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    throw new BodyEncodingError('json', '', `a ${typeof value} has no JSON form`);
  }
  try {
    return { contentType: 'application/json', payload: JSON.stringify(value) };
  } catch (error) {
    throw new BodyEncodingError('json', '', error instanceof Error ? error.message : 'not serialisable', {
      cause: error,
    });
  }
}

/**
 * Form-encodes a plain object. Nested objects become `a[b]=c`, arrays `a[0]=c`; `null` becomes an
 * empty value (Stripe's "unset"); `undefined` and empty objects/arrays are left out; booleans and
 * numbers are written as JSON writes them. Key names and values are percent-encoded; the brackets
 * Ferry adds are not.
 * @throws BodyEncodingError unless the top level is a plain object, or for non-finite numbers,
 *   BigInts, functions and symbols.
 */
export function encodeForm(value: unknown): string {
  if (!isPlainObject(value)) throw new BodyEncodingError('form', '', 'the top level must be an object');
  const pairs: string[] = [];
  const walk = (key: string, path: string, v: unknown): void => {
    if (v === undefined) return;
    if (v === null) pairs.push(`${key}=`);
    else if (typeof v === 'string') pairs.push(`${key}=${encodeURIComponent(v)}`);
    else if (typeof v === 'boolean') pairs.push(`${key}=${v}`);
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new BodyEncodingError('form', path, `${v} is not a finite number`);
      pairs.push(`${key}=${v}`);
    } else if (Array.isArray(v)) v.forEach((item, i) => { walk(`${key}[${i}]`, `${path}/${i}`, item); });
    else if (isPlainObject(v)) {
      for (const [k, item] of Object.entries(v)) {
        walk(`${key}[${encodeURIComponent(k)}]`, `${path}/${escapePointerToken(k)}`, item);
      }
    } else throw new BodyEncodingError('form', path, `a ${typeof v} cannot be form-encoded`);
  };
  for (const [k, v] of Object.entries(value)) walk(encodeURIComponent(k), `/${escapePointerToken(k)}`, v);
  return pairs.join('&');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Escapes one reference token for a JSON pointer (`a/b` → `a~1b`), for error paths. */
function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}
