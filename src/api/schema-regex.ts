/**
 * JSON Schema `pattern` and `patternProperties` run on RE2 (re2js, a pure-JS port of RE2/Go
 * regexp), whose matching time is linear in the input: an event cannot make validation
 * backtrack for minutes (`"pattern": "(a+)+$"` against 30 × "a" + "!" takes about a minute in a
 * JS RegExp, and blocks the thread that delivers every other Integration's events).
 *
 * The price is RE2 syntax: no lookahead or lookbehind, no backreferences, repetition counts up
 * to 1000. A pattern RE2 refuses is a compile error naming the field, so it shows as Stalled,
 * never at run time. JS `\uXXXX` and `\u{…}` escapes, common in schemas, are accepted.
 *
 * Pure.
 */
import { RE2JS } from 're2js';

/** What ajv calls for every pattern it compiles (ajv's `code.regExp` option). */
export interface RegExpEngine {
  (pattern: string, flags: string): { test(input: string): boolean };
  /** Only used by ajv's standalone code generation, which Ferry does not use. */
  code: string;
}

/** A pattern RE2 cannot run; `message` says why in RE2's words. */
export class UnsupportedPatternError extends Error {
  override readonly name = 'UnsupportedPatternError';
  readonly code = 'FERRY_UNSUPPORTED_PATTERN';
  readonly retryable = false;
  readonly pattern: string;

  constructor(pattern: string, detail: string, options?: ErrorOptions) {
    super(`${JSON.stringify(pattern)} is not supported: patterns use RE2 syntax, which runs in linear time but has no lookahead, lookbehind or backreferences (${detail})`, options);
    this.pattern = pattern;
  }
}

/**
 * Rewrites the JS-only escapes `\uXXXX` (a surrogate pair becomes one code point) and `\u{…}`
 * to RE2's `\x{…}`; everything else is left as written. An escaped backslash stays escaped.
 */
export function toRe2Syntax(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern.charAt(i);
    if (ch !== '\\' || i + 1 >= pattern.length) {
      out += ch;
      continue;
    }
    const next = pattern.charAt(i + 1);
    if (next !== 'u') {
      out += ch + next;
      i += 1;
      continue;
    }
    const braced = /^\\u\{([0-9a-fA-F]{1,6})\}/.exec(pattern.slice(i, i + 10));
    if (braced?.[1] !== undefined) {
      out += `\\x{${braced[1]}}`;
      i += braced[0].length - 1;
      continue;
    }
    const unit = hex4(pattern, i + 2);
    if (unit === undefined) {
      out += '\\u';
      i += 1;
      continue;
    }
    const low = pattern.startsWith('\\u', i + 6) ? hex4(pattern, i + 8) : undefined;
    if (unit >= 0xd800 && unit <= 0xdbff && low !== undefined && low >= 0xdc00 && low <= 0xdfff) {
      out += `\\x{${(((unit - 0xd800) << 10) + (low - 0xdc00) + 0x10000).toString(16)}}`;
      i += 11;
    } else {
      out += `\\x{${unit.toString(16)}}`;
      i += 5;
    }
  }
  return out;
}

function hex4(s: string, at: number): number | undefined {
  const digits = s.slice(at, at + 4);
  return /^[0-9a-fA-F]{4}$/.test(digits) ? Number.parseInt(digits, 16) : undefined;
}

/**
 * Compiles a schema pattern for linear-time matching. `test` is unanchored, like
 * `RegExp.prototype.test` (JSON Schema patterns are not implicitly anchored).
 *
 * @throws UnsupportedPatternError when RE2 refuses the pattern.
 */
export function compilePattern(pattern: string): RE2JS {
  try {
    return RE2JS.compile(toRe2Syntax(pattern));
  } catch (err) {
    // re2js's messages start with "error parsing regexp: "; the rest names the construct.
    const detail = err instanceof Error ? err.message.replace(/^error parsing regexp: /, '') : String(err);
    throw new UnsupportedPatternError(pattern, detail, { cause: err });
  }
}

/** The engine handed to ajv. RE2 is always Unicode-aware, so ajv's `u` flag needs nothing. */
export const re2Engine: RegExpEngine = Object.assign((pattern: string) => compilePattern(pattern), { code: 'ferryRe2' });

/** Keywords whose value is one subschema. */
const SUBSCHEMA = [
  'additionalProperties',
  'propertyNames',
  'items',
  'additionalItems',
  'contains',
  'not',
  'if',
  'then',
  'else',
  'unevaluatedItems',
  'unevaluatedProperties',
  'contentSchema',
] as const;
/** Keywords whose value is an array of subschemas. */
const SUBSCHEMA_ARRAY = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'] as const;
/** Keywords whose value maps names to subschemas. */
const SUBSCHEMA_MAP = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'dependencies'] as const;

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * The first `pattern` or `patternProperties` key in `schema` (walked through every subschema
 * keyword of JSON Schema 2020-12 and draft-07) that RE2 cannot compile, with the JSON Pointer to
 * it inside the schema; undefined when all compile. Values of `const`, `enum`, `default` and
 * `examples` are data, not schemas, and are not looked into.
 */
export function findUnsupportedPattern(schema: unknown): { readonly pointer: string; readonly error: UnsupportedPatternError } | undefined {
  const stack: { node: unknown; pointer: string }[] = [{ node: schema, pointer: '' }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { node, pointer } = item;
    if (node === null || typeof node !== 'object' || Array.isArray(node)) continue;
    const s = node as Readonly<Record<string, unknown>>;
    const checks: [string, string][] = [];
    if (typeof s.pattern === 'string') checks.push([s.pattern, `${pointer}/pattern`]);
    const pp = s.patternProperties;
    if (pp !== null && typeof pp === 'object' && !Array.isArray(pp)) {
      for (const key of Object.keys(pp)) checks.push([key, `${pointer}/patternProperties/${escapePointer(key)}`]);
    }
    for (const [pattern, at] of checks) {
      try {
        compilePattern(pattern);
      } catch (err) {
        if (err instanceof UnsupportedPatternError) return { pointer: at, error: err };
        throw err;
      }
    }
    // Pushed in reverse so that children are visited in the order listed: a stable report.
    const children: { node: unknown; pointer: string }[] = [];
    for (const k of SUBSCHEMA) if (k in s && !Array.isArray(s[k])) children.push({ node: s[k], pointer: `${pointer}/${k}` });
    for (const k of SUBSCHEMA_ARRAY) {
      const v = s[k];
      if (Array.isArray(v)) v.forEach((sub: unknown, i) => children.push({ node: sub, pointer: `${pointer}/${k}/${i}` }));
    }
    for (const k of SUBSCHEMA_MAP) {
      const v = s[k];
      if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
      for (const [name, sub] of Object.entries(v as Record<string, unknown>)) children.push({ node: sub, pointer: `${pointer}/${k}/${escapePointer(name)}` });
    }
    stack.push(...children.reverse());
  }
  return undefined;
}
