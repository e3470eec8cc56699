/**
 * What the CRD needs beyond what a zod schema says: descriptions, CEL rules, list and map
 * semantics. It is attached to the zod schemas themselves, in a registry of our own, so the
 * schema a field is parsed with and the schema the API server validates it with are written
 * in one place.
 *
 * Cross-field rules are declared once as a {@link Rule}: a CEL expression for the API server and
 * a TypeScript predicate for `parse*Spec`, side by side with one message, so both layers reject
 * the same specs with the same words. Unit tests cover the predicates; the CRD validation
 * integration test covers the CEL.
 */
import { z } from 'zod';

/** One entry of `x-kubernetes-validations`. */
export interface CelRule {
  /** CEL expression with `self` bound to the annotated value; true means valid. */
  readonly rule: string;
  readonly message: string;
  /** Where the API server reports a violation, relative to `self` (e.g. `.initial`). */
  readonly fieldPath?: string;
  readonly reason?: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden' | 'FieldValueDuplicate';
}

/** Keys copied verbatim into the generated JSON Schema of the annotated zod schema. */
export interface CrdMeta {
  description?: string;
  maxProperties?: number;
  maxLength?: number;
  /** Check `pattern` with a CEL rule that reports this message (see {@link matching}). */
  patternMessage?: string;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

/**
 * Metadata for CRD generation, keyed by zod schema instance. Filled while the schema modules
 * load and only read afterwards. Kept apart from zod's global registry so that nothing another
 * library registers leaks into the CRDs.
 */
export const crdMeta = z.registry<CrdMeta>();

/**
 * Returns a copy of `schema` with CRD metadata attached (merged with what the original carries;
 * CEL rules accumulate). The original is left alone, so a shared schema can be described
 * differently at each use. Annotate last: zod methods such as `.min()` return copies that do not
 * carry the metadata.
 */
export function annotate<S extends z.ZodType>(schema: S, meta: CrdMeta): S {
  // A clone (same definition) inherits the original's metadata through zod's parent link and
  // its own entry overrides it.
  const copy = schema.clone();
  const existing = crdMeta.get(copy);
  const rules = [...(existing?.['x-kubernetes-validations'] ?? []), ...(meta['x-kubernetes-validations'] ?? [])];
  const merged: CrdMeta = { ...existing, ...meta };
  if (rules.length > 0) merged['x-kubernetes-validations'] = rules;
  else delete merged['x-kubernetes-validations'];
  crdMeta.add(copy, merged);
  return copy;
}

/**
 * `schema.regex(pattern, message)`, where the CRD checks the pattern with a CEL rule so that the
 * API server reports `message` rather than the raw regex. Returns an annotated copy: call last.
 */
export function matching(schema: z.ZodString, pattern: RegExp, message: string): z.ZodString {
  return annotate(schema.regex(pattern, message), { patternMessage: message });
}

/** Sets the description `kubectl explain` shows for this field. */
export function describe<S extends z.ZodType>(schema: S, description: string): S {
  return annotate(schema, { description });
}

/**
 * A rule checked by both the API server (CEL) and `parse*Spec` (`holds`).
 *
 * The CEL side must guard every defaulted field with `has()`: the API server also evaluates the
 * rule against the schema's own `default: {}`, before nested defaults are filled in, and refuses
 * the CRD if that fails. `holds` sees parsed values, where defaults are always present.
 */
export interface Rule<T> extends CelRule {
  /** The same rule as `rule`, in TypeScript. Runs only on values without any other issue. */
  readonly holds: (value: T) => boolean;
}

function fieldPathSegments(fieldPath: string | undefined): string[] {
  if (fieldPath === undefined) return [];
  return fieldPath.split('.').filter((s) => s !== '');
}

/**
 * Adds cross-field rules to an object schema: a zod refinement that reports each broken rule
 * at its `fieldPath`, and the matching `x-kubernetes-validations`.
 */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly Rule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    // zod runs refinements even after some checks inside the value failed (a bad pattern does
    // not abort); a rule only judges well-formed values, so those failures speak alone.
    if (ctx.issues.length > 0) return;
    for (const rule of rules) {
      if (!rule.holds(value)) ctx.addIssue({ code: 'custom', message: rule.message, path: fieldPathSegments(rule.fieldPath) });
    }
  });
  // A refinement is a new schema without zod's parent link: carry the metadata over by hand.
  const inherited = crdMeta.get(schema);
  return annotate(refined, {
    ...inherited,
    'x-kubernetes-validations': [...(inherited?.['x-kubernetes-validations'] ?? []), ...rules.map(({ rule, message, fieldPath, reason }) => ({
      rule,
      message,
      ...(fieldPath === undefined ? {} : { fieldPath }),
      ...(reason === undefined ? {} : { reason }),
    }))],
  });
}

/**
 * Rule: exactly one of `keys` is set. `what` names the object in the message
 * (`auth must set exactly one of bearer, basic, apiKey or oauth2ClientCredentials`).
 */
export function exactlyOne<T extends object>(what: string, keys: readonly (keyof T & string)[]): Rule<T> {
  const listed = keys.length === 2 ? keys.join(' or ') : `${keys.slice(0, -1).join(', ')} or ${String(keys.at(-1))}`;
  return {
    rule: `[${keys.map((k) => `has(self.${k})`).join(', ')}].filter(x, x).size() == 1`,
    message: `${what} must set exactly one of ${listed}`,
    holds: (value) => keys.filter((k) => value[k] !== undefined).length === 1,
  };
}
