/**
 * The middle of both pipelines: the JSON Schema records are validated against, and the
 * transform that turns a record into the target's payload.
 */
import { z } from 'zod';
import { describe, exactlyOne, withRules } from './crd-meta.ts';
import { configMapKeyRefSchema } from './auth.ts';
import { positiveDurationSchema } from './duration.ts';
import { fieldPointerSchema, freeFormObjectSchema, jsonPointerSchema, stringMapSchema } from './fields.ts';

/**
 * A JSON Schema (2020-12): inline, or from a ConfigMap key (for schemas shared by several
 * resources). Exactly one of the two.
 */
export const schemaSourceSchema = describe(
  withRules(
    z.strictObject({
      inline: describe(freeFormObjectSchema, 'The JSON Schema (2020-12) itself.').optional(),
      configMapKeyRef: configMapKeyRefSchema.optional(),
    }),
    [exactlyOne('schema', ['inline', 'configMapKeyRef'])],
  ),
  'JSON Schema (2020-12) that every record must satisfy: exactly one of inline or configMapKeyRef. Regexes (pattern, patternProperties) use RE2 syntax, matched in linear time: no lookaround or backreferences.',
);

/**
 * How a record becomes the target's payload: exactly one of
 * - `mapping`: output field → JSON Pointer into the record (fast, compiled once). A key that is
 *   itself a JSON Pointer (`/customer/id`) builds a nested output field.
 * - `jsonata`: a JSONata expression (expressive), stopped after `timeout`.
 */
export const transformSchema = describe(
  withRules(
    z.strictObject({
      mapping: describe(
        stringMapSchema(z.string().min(1, 'must not be empty').max(512), jsonPointerSchema, 256),
        'Output field → JSON Pointer into the record; a key that is itself a pointer (/customer/id) builds a nested field.',
      ).optional(),
      jsonata: describe(z.string().min(1, 'must not be empty').max(16_384), 'JSONata expression over the record; its result is the payload.').optional(),
      timeout: describe(positiveDurationSchema, 'Time limit for one jsonata evaluation (default 1s); past it the evaluation is stopped and the record parked with reason transform.').optional(),
    }),
    [exactlyOne('transform', ['mapping', 'jsonata'])],
  ),
  'Record → payload: exactly one of mapping (output field → JSON Pointer) or jsonata.',
);

/** A JSON Pointer naming a record's identity (ordering keys, sync keys). */
export const keyPointerSchema = fieldPointerSchema;

/**
 * Where undeliverable records go. Fallback messages outlive the resource: deleting it keeps them
 * for `retention`.
 */
export const fallbackSchema = describe(
  z.strictObject({
    retention: describe(positiveDurationSchema, 'How long fallback messages are kept.').default('14d'),
  }),
  'The JetStream fallback stream that keeps what could not be delivered, with the reason.',
);

export type SchemaSource = z.output<typeof schemaSourceSchema>;
export type Transform = z.output<typeof transformSchema>;
