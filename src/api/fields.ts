/**
 * Scalar building blocks shared by both kinds: Kubernetes names, JSON Pointers, URLs and
 * templates, HTTP header names and maps, free-form JSON objects. Every string has a length
 * bound: besides limiting what a spec can carry, the API server prices CEL rules by it.
 */
import { z } from 'zod';
import { annotate, describe, matching, withRules, type Rule } from './crd-meta.ts';

/** A DNS-1123 subdomain: the names of Secrets and ConfigMaps. */
export const objectNameSchema = matching(
  z.string().min(1, 'must not be empty').max(253),
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
  'must be a lowercase DNS name (a-z, 0-9, "-" and ".")',
);

/** A key in a Secret's or ConfigMap's data. */
export const dataKeySchema = matching(
  z.string().min(1, 'must not be empty').max(253),
  /^[-._a-zA-Z0-9]+$/,
  'must consist of letters, digits, "-", "_" and "."',
);

// One reference token of a JSON Pointer (RFC 6901): `~` only as the escapes ~0 and ~1.
const TOKEN = '(?:[^~/]|~[01])*';
// Inside {{ }} templates, braces and whitespace would make the end of the pointer ambiguous.
const TEMPLATE_TOKEN = '(?:[^~/{}\\s]|~[01])*';
const TEMPLATE = `\\{\\{(?:/${TEMPLATE_TOKEN})+\\}\\}`;

/** A JSON Pointer; the empty pointer means the whole document. */
export const jsonPointerSchema = matching(
  z.string().max(512),
  new RegExp(`^(?:/${TOKEN})*$`),
  'must be a JSON Pointer such as /id or /customer/id',
);

/** A JSON Pointer to a field (not the whole document). */
export const fieldPointerSchema = matching(
  z.string().min(2, 'must be a JSON Pointer to a field, such as /id').max(512),
  new RegExp(`^(?:/${TOKEN})+$`),
  'must be a JSON Pointer to a field, such as /id',
);

/** An http(s) URL without user info; the host is literal. */
export const httpUrlSchema = matching(
  z.string().min(1, 'must not be empty').max(2048),
  /^https?:\/\/[^\s/?#@{}]+(?:[/?#][^\s{}]*)?$/,
  'must be an http(s) URL without user info',
);

/**
 * An http(s) URL that may take values from the record after the host: `{{/pointer}}` is
 * replaced by the URL-encoded value at that JSON Pointer. The host stays literal so that event
 * data cannot choose where requests go.
 */
export const urlTemplateSchema = describe(
  matching(
    z.string().min(1, 'must not be empty').max(2048),
    new RegExp(`^https?://[^\\s/?#@{}]+(?:[/?#](?:[^\\s{}]|${TEMPLATE})*)?$`),
    'must be an http(s) URL without user info; {{/pointer}} templates are allowed after the host',
  ),
  'http(s) URL; after the host, {{/json/pointer}} is replaced by the URL-encoded value from the record.',
);

/** Text with optional `{{/pointer}}` templates (idempotency keys). */
export const textTemplateSchema = matching(
  z.string().min(1, 'must not be empty').max(512),
  new RegExp(`^(?:[^{}]|${TEMPLATE})+$`),
  'must be text with optional {{/pointer}} templates',
);

/** An HTTP header name (an RFC 9110 token). */
export const headerNameSchema = matching(
  z.string().min(1, 'must not be empty').max(256),
  /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/,
  'must be an HTTP header name',
);

/** A query parameter name. */
export const queryParamSchema = matching(
  z.string().min(1, 'must not be empty').max(256),
  /^[^\s&=#?]+$/,
  'must be a query parameter name',
);

/**
 * A string-to-string map with at most `maxEntries` entries (`maxProperties` in the CRD) and
 * optional cross-entry rules. Key patterns are checked by zod only: the CRD cannot constrain
 * map keys without CEL.
 */
export function stringMapSchema<K extends z.ZodString, V extends z.ZodString>(
  key: K,
  value: V,
  maxEntries: number,
  rules: readonly Rule<Record<z.output<K>, z.output<V>>>[] = [],
) {
  const bounded = z.record(key, value).refine((m) => Object.keys(m).length <= maxEntries, `must have at most ${maxEntries} entries`);
  return annotate(withRules(bounded, rules), { maxProperties: maxEntries });
}

const noAuthorizationHeader: Rule<Record<string, string>> = {
  rule: "self.all(name, name.lowerAscii() != 'authorization')",
  message: 'must not set Authorization; use auth with a secretKeyRef',
  holds: (headers) => Object.keys(headers).every((name) => name.toLowerCase() !== 'authorization'),
};

/** HTTP headers sent with every request. Credentials belong in `auth`, never here. */
export const headersSchema = describe(
  stringMapSchema(headerNameSchema, z.string().max(4096).regex(/^[^\r\n]*$/, 'must not contain line breaks'), 32, [noAuthorizationHeader]),
  'Extra HTTP headers. Credentials belong in auth, never here.',
);

const FREE_FORM_MAX_BYTES = 65_536;

/**
 * A JSON object of any shape (a JSON Schema document). The CRD keeps its fields as written
 * (`x-kubernetes-preserve-unknown-fields`); zod bounds its size.
 */
export const freeFormObjectSchema = annotate(
  z
    .record(z.string(), z.unknown())
    .refine((o) => JSON.stringify(o).length <= FREE_FORM_MAX_BYTES, `must be at most ${FREE_FORM_MAX_BYTES} bytes as JSON`),
  { 'x-kubernetes-preserve-unknown-fields': true },
);
