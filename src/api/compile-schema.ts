/**
 * Compiles the JSON Schemas that a spec carries (the event schema, the response schema) with
 * ajv for JSON Schema 2020-12 with formats. Pure: the controller calls it to decide whether a
 * generation is valid, the runtime to get the validator it runs on every event.
 *
 * A schema that does not compile is reported with the exact field in the CR
 * (`spec.schema.inline.properties.amount.type: must be equal to one of the allowed values`).
 *
 * Regexes (`pattern`, `patternProperties`) run on RE2 (schema-regex.ts): linear time whatever
 * the event, at the price of RE2 syntax; a pattern RE2 refuses is reported at its field.
 */
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { findUnsupportedPattern, re2Engine } from './schema-regex.ts';

export type { ValidateFunction };

export type CompileResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly field: string; readonly message: string };

/** A fresh ajv instance; each compiled spec gets its own, so a bad `$id` cannot leak across specs. */
function newAjv(): Ajv2020.default {
  // strict: false because users paste schemas from elsewhere that use unknown keywords (`example`).
  const ajv = new Ajv2020.default({ allErrors: true, strict: false, validateFormats: true, code: { regExp: re2Engine } });
  addFormats.default(ajv);
  return ajv;
}

/** JSON Pointer (`/properties/amount/type`) appended to a dotted CR field path. */
export function pointerToField(base: string, pointer: string): string {
  if (pointer === '' || pointer === '/') return base;
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  return parts.reduce(
    (acc, p) => (/^[A-Za-z_][\w-]*$/.test(p) ? `${acc}.${p}` : /^\d+$/.test(p) ? `${acc}[${p}]` : `${acc}[${JSON.stringify(p)}]`),
    base,
  );
}

/**
 * Compiles `schema` found at CR field `field`. On failure the result names the field inside the
 * schema that is wrong and ajv's message for it.
 */
export function compileJsonSchema(schema: unknown, field: string): CompileResult<ValidateFunction> {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    return { ok: false, field, message: 'must be a JSON Schema object' };
  }
  const ajv = newAjv();
  if (!ajv.validateSchema(schema)) {
    // ajv lists the leaf failure first, before the anyOf that wraps it: the most useful one.
    const err = ajv.errors?.[0];
    const at = pointerToField(field, err?.instancePath ?? '');
    const allowed =
      err?.keyword === 'enum' ? ` (${((err.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')})` : '';
    return { ok: false, field: at, message: `${err?.message ?? 'is not a valid JSON Schema'}${allowed}` };
  }
  const badPattern = findUnsupportedPattern(schema);
  if (badPattern) return { ok: false, field: pointerToField(field, badPattern.pointer), message: badPattern.error.message };
  try {
    return { ok: true, value: ajv.compile(schema) };
  } catch (err) {
    // Meta-schema-valid but uncompilable: an unresolvable $ref, an unknown format, a bad regex.
    return { ok: false, field, message: err instanceof Error ? err.message : 'cannot be compiled' };
  }
}

/** ajv's errors for one failed validation, as one line (`/amount: must be number; ...`). */
export function describeValidationErrors(errors: readonly ErrorObject[] | null | undefined, max = 5): string {
  if (!errors || errors.length === 0) return 'invalid';
  const lines = errors.slice(0, max).map((e) => `${e.instancePath === '' ? '/' : e.instancePath}: ${e.message ?? e.keyword}`);
  if (errors.length > max) lines.push(`and ${errors.length - max} more`);
  return lines.join('; ');
}
