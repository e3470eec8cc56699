/**
 * Message bytes → event: the first step of every pipeline, run once per message on the hot path.
 * Two formats (`spec.source.format`):
 * - `json`: the payload is UTF-8 JSON, and that JSON is the event.
 * - `cloudevents`: a CloudEvent 1.0 in binary mode (attributes in `ce-` headers, the payload is
 *   the data) or structured mode (the payload is the JSON event format envelope).
 *
 * Pure: no I/O, no state. Every refusal is an `EventDecodeError` that says what is wrong and
 * where, so the event parked in the fallback stream can be fixed by reading its reason.
 */
import { Buffer } from 'node:buffer';
import { EventDecodeError } from './errors.ts';

/** `spec.source.format`. */
export type EventFormat = 'json' | 'cloudevents';

/** A CloudEvents extension attribute value (JSON event format allows these three types). */
export type CloudEventExtensionValue = string | number | boolean;

/** The context attributes of a CloudEvent 1.0. */
export interface CloudEventAttributes {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  /** Always `1.0`: other versions are refused. */
  readonly specversion: string;
  readonly subject?: string;
  /** As sent (RFC 3339 by the spec); not parsed or checked. */
  readonly time?: string;
  /** In binary mode, the `content-type` header (or `ce-datacontenttype` when that is absent). */
  readonly datacontenttype?: string;
  readonly dataschema?: string;
  /**
   * Every other attribute, by name (lower case in binary mode, as header names are matched
   * case-insensitively). A null-prototype object: a `__proto__` attribute is an ordinary key.
   */
  readonly extensions: Readonly<Record<string, CloudEventExtensionValue>>;
}

/** A decoded message. */
export interface DecodedEvent {
  /**
   * What validation and the transform see: the JSON payload (`json`), or the CloudEvent's data:
   * JSON data parsed, `text/*` data as a string, undefined when the event carries no data.
   */
  readonly data: unknown;
  /** Present for `cloudevents` only. */
  readonly cloudEvent?: CloudEventAttributes;
  /** The payload exactly as received (the same array, not a copy). */
  readonly raw: Uint8Array;
}

/**
 * Decodes one message.
 *
 * Called by the pipeline for every message, before schema validation. `headers` are the NATS
 * message headers (names matched case-insensitively; where a header repeats, its first value
 * counts); they matter only for `cloudevents`.
 *
 * CloudEvents mode detection, in order:
 * 1. `content-type: application/cloudevents+json` (or `application/cloudevents`) → structured;
 *    other `application/cloudevents…` types (batch mode, Avro, Protobuf) are refused.
 * 2. any `ce-` header → binary; the payload is the data, parsed as JSON when the content type
 *    is JSON (`application/json`, `text/json`, `…+json`) or absent, decoded as a string when it
 *    is `text/*`, refused otherwise. Header values are percent-decoded (CloudEvents HTTP binding
 *    §3.1.3.2, which binary mode over NATS follows); a value that does not percent-decode is
 *    kept as sent.
 * 3. otherwise → structured, if the payload is a JSON object.
 * In structured mode the data is `data`, or `data_base64` decoded and then read by
 * `datacontenttype` as in binary mode.
 *
 * Guarantees: the payload is never modified; `raw` is the payload itself.
 *
 * @throws EventDecodeError (never retryable) when the payload is not UTF-8 or not JSON, or is
 *   not a CloudEvent 1.0: required attributes missing (`id`, `source`, `specversion`, `type`,
 *   all named), an attribute of the wrong type, another `specversion`, bad `data_base64`, or a
 *   content type that is neither JSON nor text.
 */
export function decodeEvent(payload: Uint8Array, headers: ReadonlyMap<string, readonly string[]> | undefined, format: EventFormat): DecodedEvent {
  if (format === 'json') return { data: parseJson(payload, 'json', 'payload'), raw: payload };
  return decodeCloudEvent(payload, headers);
}

// Fatal: invalid UTF-8 must be refused, not turned into U+FFFD. Non-streaming `decode()` calls
// keep no state between calls, so one shared decoder is safe. A leading BOM is skipped.
const utf8 = new TextDecoder('utf-8', { fatal: true });

const REQUIRED = ['id', 'source', 'specversion', 'type'] as const;
const OPTIONAL = ['subject', 'time', 'datacontenttype', 'dataschema'] as const;

/** Context attributes with a field of their own, and the data members of the JSON envelope. */
function isKnownAttribute(name: string): boolean {
  switch (name) {
    case 'id':
    case 'source':
    case 'specversion':
    case 'type':
    case 'subject':
    case 'time':
    case 'datacontenttype':
    case 'dataschema':
    case 'data':
    case 'data_base64':
      return true;
    default:
      return false;
  }
}

function decodeCloudEvent(payload: Uint8Array, headers: ReadonlyMap<string, readonly string[]> | undefined): DecodedEvent {
  let contentType: string | undefined;
  let ce: Record<string, string> | undefined;
  if (headers) {
    for (const [name, values] of headers) {
      const value = values[0];
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      if (lower === 'content-type') contentType ??= value.trim();
      else if (lower.startsWith('ce-') && lower.length > 3) {
        // Null prototype: attribute names come from the sender, `ce-__proto__` included.
        ce ??= Object.create(null) as Record<string, string>;
        const attribute = lower.slice(3);
        ce[attribute] ??= percentDecode(value.trim());
      }
    }
  }

  const media = contentType === undefined ? undefined : mediaType(contentType);
  if (media !== undefined && media.startsWith('application/cloudevents')) {
    if (media === 'application/cloudevents+json' || media === 'application/cloudevents') return decodeStructured(payload);
    const why =
      media === 'application/cloudevents-batch+json'
        ? 'batched CloudEvents (application/cloudevents-batch+json) are not supported; publish one event per message'
        : `CloudEvents event format ${media} is not supported; use application/cloudevents+json or binary mode`;
    throw new EventDecodeError('cloudevents', 'content-type', why);
  }
  if (ce) {
    // The content type of a binary-mode message is the data's (HTTP binding §3.1.1).
    if (contentType !== undefined) ce.datacontenttype = contentType;
    const cloudEvent = readAttributes(ce, 'binary');
    const data = payload.length === 0 ? undefined : decodeData(payload, cloudEvent.datacontenttype, 'payload');
    return { data, cloudEvent, raw: payload };
  }
  return decodeStructured(payload);
}

function decodeStructured(payload: Uint8Array): DecodedEvent {
  const envelope = parseJson(payload, 'cloudevents', 'payload');
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)) {
    const got = envelope === null ? 'null' : Array.isArray(envelope) ? 'an array' : `a ${typeof envelope}`;
    throw new EventDecodeError(
      'cloudevents',
      'not-cloudevent',
      `payload is not a CloudEvent: no ce- headers (binary mode), and the payload is ${got}, not a JSON event format object (structured mode)`,
    );
  }
  const fields = envelope as Readonly<Record<string, unknown>>;
  const cloudEvent = readAttributes(fields, 'structured');
  const base64 = Object.hasOwn(fields, 'data_base64') ? fields.data_base64 : undefined;
  if (base64 === undefined || base64 === null) return { data: fields.data, cloudEvent, raw: payload };
  if (Object.hasOwn(fields, 'data') && fields.data !== null) {
    throw new EventDecodeError('cloudevents', 'invalid-attribute', 'CloudEvent carries both data and data_base64; it must carry at most one', {
      attributes: ['data', 'data_base64'],
    });
  }
  if (typeof base64 !== 'string') {
    throw new EventDecodeError('cloudevents', 'invalid-attribute', `CloudEvent data_base64 must be a string, not ${describeType(base64)}`, {
      attributes: ['data_base64'],
    });
  }
  const bytes = decodeBase64(base64);
  return { data: decodeData(bytes, cloudEvent.datacontenttype, 'data_base64'), cloudEvent, raw: payload };
}

/**
 * Reads and checks the context attributes from the binary-mode headers (without `ce-`) or the
 * structured-mode envelope.
 */
function readAttributes(fields: Readonly<Record<string, unknown>>, mode: 'binary' | 'structured'): CloudEventAttributes {
  const present = (name: string): unknown => (Object.hasOwn(fields, name) ? fields[name] : undefined);
  const label = (name: string): string => (mode === 'binary' ? `ce-${name}` : name);

  const missing = REQUIRED.filter((name) => present(name) === undefined || present(name) === null);
  if (missing.length > 0) {
    const plural = missing.length > 1 ? 's' : '';
    throw new EventDecodeError(
      'cloudevents',
      'missing-attributes',
      `CloudEvent (${mode} mode) is missing required attribute${plural} ${missing.map(label).join(', ')}`,
      { attributes: missing },
    );
  }
  for (const name of REQUIRED) {
    const value = present(name);
    if (typeof value !== 'string' || value === '') {
      throw new EventDecodeError('cloudevents', 'invalid-attribute', `CloudEvent attribute ${label(name)} must be a non-empty string, not ${describeType(value)}`, {
        attributes: [name],
      });
    }
  }
  const specversion = fields.specversion as string;
  if (specversion !== '1.0') {
    throw new EventDecodeError('cloudevents', 'specversion', `CloudEvents specversion ${JSON.stringify(specversion)} is not supported; Ferry reads 1.0`, {
      attributes: ['specversion'],
    });
  }

  const optional: { -readonly [K in (typeof OPTIONAL)[number]]?: string } = {};
  for (const name of OPTIONAL) {
    const value = present(name);
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') {
      throw new EventDecodeError('cloudevents', 'invalid-attribute', `CloudEvent attribute ${label(name)} must be a string, not ${describeType(value)}`, {
        attributes: [name],
      });
    }
    optional[name] = value;
  }

  const extensions = Object.create(null) as Record<string, CloudEventExtensionValue>;
  for (const name of Object.keys(fields)) {
    if (isKnownAttribute(name)) continue;
    const value = fields[name];
    // The JSON event format writes an absent attribute as null.
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new EventDecodeError(
        'cloudevents',
        'invalid-attribute',
        `CloudEvent extension attribute ${label(name)} must be a string, number or boolean, not ${describeType(value)}`,
        { attributes: [name] },
      );
    }
    extensions[name] = value;
  }

  return {
    id: fields.id as string,
    source: fields.source as string,
    type: fields.type as string,
    specversion,
    ...optional,
    extensions,
  };
}

/** Event data bytes → a value, by content type: JSON parsed, text as a string. */
function decodeData(bytes: Uint8Array, contentType: string | undefined, what: string): unknown {
  if (bytes.length === 0) return undefined;
  const media = contentType === undefined ? undefined : mediaType(contentType);
  if (media === undefined || isJsonMediaType(media)) return parseJson(bytes, 'cloudevents', what);
  if (media.startsWith('text/')) return decodeUtf8(bytes, 'cloudevents', what);
  throw new EventDecodeError(
    'cloudevents',
    'content-type',
    `CloudEvent data of content type ${media} is not supported: Ferry validates and transforms JSON or text data`,
    { attributes: ['datacontenttype'] },
  );
}

/** `Application/JSON; charset=utf-8` → `application/json`. */
function mediaType(contentType: string): string {
  const semicolon = contentType.indexOf(';');
  return (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

function isJsonMediaType(media: string): boolean {
  return media === 'application/json' || media === 'text/json' || media.endsWith('+json');
}

function percentDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    // Not percent-encoded after all (`50%`): producers that set headers by hand rarely encode.
    return value;
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === '') return 'an empty string';
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type}`;
}

// ---------------------------------------------------------------------------------------------
// Bytes → text → JSON, with errors that say where.

function decodeUtf8(bytes: Uint8Array, format: EventFormat, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    const offset = invalidUtf8Offset(bytes);
    const at = offset < 0 ? '' : `: invalid byte sequence starting with 0x${(bytes[offset] ?? 0).toString(16).padStart(2, '0')} at offset ${offset}`;
    throw new EventDecodeError(format, 'utf8', `${what} is not valid UTF-8${at}`, offset < 0 ? undefined : { offset }, { cause: err });
  }
}

function parseJson(bytes: Uint8Array, format: EventFormat, what: string): unknown {
  const text = decodeUtf8(bytes, format, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const found = findJsonError(text);
    if (!found) {
      // Our scanner saw no error where V8 did: trust V8's message.
      throw new EventDecodeError(format, 'json', `${what} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
    }
    const { line, column } = lineAndColumn(text, found.at);
    throw new EventDecodeError(format, 'json', `${what} is not valid JSON: ${found.problem} at position ${found.at} (line ${line}, column ${column})`, { offset: found.at }, { cause: err });
  }
}

/** Base64 (standard or URL-safe alphabet, padding optional) → bytes. */
function decodeBase64(text: string): Uint8Array {
  // Buffer.from skips characters outside the alphabet: check first, so corrupt data is refused
  // rather than silently shortened.
  let end = text.length;
  if (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  if (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  let bad = -1;
  for (let i = 0; i < end && bad < 0; i++) {
    const c = text.charCodeAt(i);
    const ok =
      (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f || c === 0x2d || c === 0x5f;
    if (!ok) bad = i;
  }
  if (bad >= 0 || end % 4 === 1 || (end < text.length && text.length % 4 !== 0)) {
    const where = bad >= 0 ? `: unexpected character ${describeChar(text, bad)} at position ${bad}` : ': wrong length';
    throw new EventDecodeError('cloudevents', 'base64', `CloudEvent data_base64 is not valid base64${where}`, {
      attributes: ['data_base64'],
      ...(bad >= 0 ? { offset: bad } : {}),
    });
  }
  return Buffer.from(text, 'base64');
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence; -1 if none. Error path only. */
function invalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] ?? 0;
    if (lead < 0x80) {
      i++;
      continue;
    }
    // Unicode Table 3-7: the second byte's range depends on the lead byte (no overlongs, no
    // surrogates, nothing above U+10FFFF).
    let continuation: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) continuation = 1;
    else if (lead >= 0xe0 && lead <= 0xef) {
      continuation = 2;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      continuation = 3;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k <= continuation; k++) {
      const b = bytes[i + k];
      if (b === undefined) return i;
      if (k === 1 ? b < low || b > high : b < 0x80 || b > 0xbf) return i;
    }
    i += continuation + 1;
  }
  return -1;
}

const ARRAY = 0;
const OBJECT = 1;

/**
 * Finds the first syntax error in text that JSON.parse refused, as a short description and a
 * position. Hand-written because V8's messages give no position for an unexpected token and
 * instead quote the payload, which may hold personal data and ends up in logs and fallback
 * headers. Runs only after JSON.parse failed, so it is written for clarity, not speed; it keeps
 * its own stack, so deeply nested input cannot overflow the call stack.
 */
function findJsonError(text: string): { problem: string; at: number } | undefined {
  const n = text.length;
  const stack: number[] = [];
  let i = 0;
  let expectValue = true;

  const skipWhitespace = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      i++;
    }
  };
  const unexpected = (expected: string): { problem: string; at: number } =>
    i >= n ? { problem: `unexpected end of input, expected ${expected}`, at: n } : { problem: `unexpected ${describeChar(text, i)}, expected ${expected}`, at: i };
  /** Scans a string starting at its opening quote; returns an error or undefined. */
  const scanString = (): { problem: string; at: number } | undefined => {
    i++;
    for (;;) {
      if (i >= n) return { problem: 'unterminated string', at: n };
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20) return { problem: `control character ${describeChar(text, i)} in a string (escape it)`, at: i };
      if (c === 0x5c) {
        const e = text.charAt(i + 1);
        if (e === 'u') {
          for (let k = 2; k < 6; k++) {
            if (!isHex(text.charCodeAt(i + k))) return { problem: 'invalid \\u escape in a string', at: i };
          }
          i += 6;
          continue;
        }
        if (!'"\\/bfnrt'.includes(e) || e === '') return { problem: 'invalid escape in a string', at: i };
        i += 2;
        continue;
      }
      i++;
    }
  };
  const scanDigits = (): number => {
    const start = i;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    return i - start;
  };
  const scanNumber = (): { problem: string; at: number } | undefined => {
    const start = i;
    if (text.charCodeAt(i) === 0x2d) i++;
    if (text.charCodeAt(i) === 0x30) i++;
    else if (scanDigits() === 0) return { problem: 'invalid number', at: start };
    if (text.charCodeAt(i) === 0x2e) {
      i++;
      if (scanDigits() === 0) return { problem: 'invalid number (no digits after the decimal point)', at: start };
    }
    const e = text.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      if (scanDigits() === 0) return { problem: 'invalid number (no digits in the exponent)', at: start };
    }
    return undefined;
  };
  /** After `{` or `,` in an object: a property name and a colon. */
  const scanKey = (): { problem: string; at: number } | undefined => {
    skipWhitespace();
    if (text.charCodeAt(i) !== 0x22) return unexpected('a property name in double quotes');
    const err = scanString();
    if (err) return err;
    skipWhitespace();
    if (text.charCodeAt(i) !== 0x3a) return unexpected("':'");
    i++;
    return undefined;
  };

  for (;;) {
    skipWhitespace();
    if (expectValue) {
      if (i >= n) return unexpected('a value');
      const c = text.charCodeAt(i);
      if (c === 0x7b || c === 0x5b) {
        i++;
        skipWhitespace();
        if (text.charCodeAt(i) === (c === 0x7b ? 0x7d : 0x5d)) {
          i++;
          expectValue = false;
          continue;
        }
        stack.push(c === 0x7b ? OBJECT : ARRAY);
        if (c === 0x7b) {
          const err = scanKey();
          if (err) return err;
        }
        continue;
      }
      let err: { problem: string; at: number } | undefined;
      if (c === 0x22) err = scanString();
      else if (c === 0x2d || isDigit(c)) err = scanNumber();
      else {
        const literal = ['true', 'false', 'null'].find((word) => text.startsWith(word, i));
        if (literal === undefined) return unexpected('a value');
        i += literal.length;
      }
      if (err) return err;
      expectValue = false;
      continue;
    }
    const top = stack.at(-1);
    if (top === undefined) return i < n ? { problem: `unexpected ${describeChar(text, i)} after the JSON value`, at: i } : undefined;
    const close = top === OBJECT ? 0x7d : 0x5d;
    const c = text.charCodeAt(i);
    if (c === close) {
      stack.pop();
      i++;
      continue;
    }
    if (c !== 0x2c) return unexpected(top === OBJECT ? "',' or '}'" : "',' or ']'");
    i++;
    if (top === OBJECT) {
      const err = scanKey();
      if (err) return err;
    }
    expectValue = true;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** `'}'` for printable ASCII, `U+0007` otherwise: never more than one character of the payload. */
function describeChar(text: string, at: number): string {
  const c = text.codePointAt(at) ?? 0;
  if (c > 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  return `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}

function lineAndColumn(text: string, at: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < at && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: at - lineStart + 1 };
}
