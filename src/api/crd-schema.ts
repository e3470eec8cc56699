/**
 * zod schema → structural OpenAPI v3 schema, as `apiextensions.k8s.io/v1` requires: every node
 * has a `type` (or is int-or-string / preserves unknown fields), no `$ref`, no `anyOf` except the
 * int-or-string form, no `additionalProperties: false` (the API server prunes unknown fields
 * instead). Anything else is a {@link CrdSchemaError} at generation time, so a schema the API
 * server would refuse never reaches a file.
 */
import { z } from 'zod';
import { crdMeta, type CelRule } from './crd-meta.ts';
import { CrdSchemaError } from './errors.ts';

/** The subset of JSONSchemaProps that Ferry's CRDs use. */
export interface StructuralSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, StructuralSchema>;
  required?: string[];
  items?: StructuralSchema;
  additionalProperties?: StructuralSchema;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  minimum?: number;
  maximum?: number;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

type Json = Record<string, unknown>;

const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
const SCALAR_KEYS = [
  'description',
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'minimum',
  'maximum',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-validations',
] as const;
// Keys that zod emits and Kubernetes does without: dropped on purpose.
const DROPPED_KEYS = new Set(['$schema', 'propertyNames', 'id']);
// Formats the API server knows; zod adds others (e.g. for safe integers) that it would warn about.
const KNOWN_FORMATS = new Set(['date-time', 'int32', 'int64', 'uri', 'email', 'hostname']);

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function child(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function isIntOrStringUnion(node: Json): boolean {
  const branches = node.anyOf;
  if (!Array.isArray(branches) || branches.length !== 2) return false;
  const types = branches.map((b) => (isJson(b) ? b.type : undefined)).sort();
  return types[0] === 'integer' && types[1] === 'string';
}

function convert(node: Json, path: string): StructuralSchema {
  const out: StructuralSchema = {};
  const seen = new Set<string>();
  const take = (key: string): unknown => {
    seen.add(key);
    return node[key];
  };

  const preserve = take('x-kubernetes-preserve-unknown-fields') === true;
  const intOrString = take('x-kubernetes-int-or-string') === true || isIntOrStringUnion(node);

  if (intOrString) {
    // The branches' own constraints cannot be expressed here; the schema's CEL rule carries them.
    take('anyOf');
    out['x-kubernetes-int-or-string'] = true;
  } else if (preserve) {
    // A free-form object: keep whatever the user wrote, do not describe its contents.
    take('type');
    take('additionalProperties');
    out.type = 'object';
    out['x-kubernetes-preserve-unknown-fields'] = true;
  } else {
    const type = take('type');
    if (typeof type !== 'string' || !TYPES.has(type)) {
      throw new CrdSchemaError(path, `no single type (${JSON.stringify(type)}); structural schemas need one`);
    }
    out.type = type as NonNullable<StructuralSchema['type']>;
  }

  for (const key of SCALAR_KEYS) {
    const value = take(key);
    if (value !== undefined) Object.assign(out, { [key]: value });
  }
  const patternMessage = take('patternMessage');
  if (typeof patternMessage === 'string') {
    if (out.pattern === undefined) throw new CrdSchemaError(path, 'patternMessage without a pattern');
    // JSON string escapes are valid CEL string escapes.
    const rule = { rule: `self.matches(${JSON.stringify(out.pattern)})`, message: patternMessage };
    out['x-kubernetes-validations'] = [rule, ...(out['x-kubernetes-validations'] ?? [])];
    delete out.pattern;
  }
  if (out.format !== undefined) {
    // zod writes a pattern next to date-time; RE2 (Go) does not accept it, and the format is enough.
    if (out.format === 'date-time') delete out.pattern;
    if (!KNOWN_FORMATS.has(out.format)) delete out.format;
  }
  if (out.type === 'integer') {
    // zod bounds integers to the safe range; it says nothing a user needs to read.
    if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
    if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
  }

  const enumValues = take('enum');
  const constValue = take('const');
  if (Array.isArray(enumValues)) out.enum = enumValues;
  else if (constValue !== undefined) out.enum = [constValue];
  const defaultValue = take('default');
  if (defaultValue !== undefined) out.default = defaultValue;

  const properties = take('properties');
  if (isJson(properties) && !preserve) {
    out.properties = {};
    for (const [name, schema] of Object.entries(properties)) {
      if (!isJson(schema)) throw new CrdSchemaError(child(path, name), 'property schema is not an object');
      out.properties[name] = convert(schema, child(path, `properties.${name}`));
    }
  }
  const required = take('required');
  if (Array.isArray(required) && required.length > 0) out.required = required.map(String);

  const items = take('items');
  if (items !== undefined) {
    if (!isJson(items)) throw new CrdSchemaError(path, 'items must be one schema');
    out.items = convert(items, child(path, 'items'));
  }

  const additional = take('additionalProperties');
  if (isJson(additional) && !preserve) {
    if (Object.keys(additional).length === 0) {
      if (out.properties === undefined) {
        throw new CrdSchemaError(path, 'a map of unknown values; mark it x-kubernetes-preserve-unknown-fields');
      }
      // A loose object: its known properties are described, the rest is pruned by the server.
    } else {
      if (out.properties !== undefined) throw new CrdSchemaError(path, 'properties and additionalProperties together');
      out.additionalProperties = convert(additional, child(path, 'additionalProperties'));
    }
  }
  // `additionalProperties: false` (strict objects) is dropped: pruning already removes unknown fields.

  for (const key of Object.keys(node)) {
    if (!seen.has(key) && !DROPPED_KEYS.has(key)) {
      throw new CrdSchemaError(path, `unsupported JSON Schema keyword ${JSON.stringify(key)}`);
    }
  }
  return out;
}

/**
 * Converts a zod schema into a structural schema for a CRD. Uses the input side of the schema
 * (fields with defaults are optional and carry `default:`) and the CRD metadata registered in
 * {@link crdMeta} (descriptions, CEL rules, list and map semantics).
 *
 * @throws CrdSchemaError when some part has no structural form.
 */
export function toStructuralSchema(schema: z.ZodType): StructuralSchema {
  const json = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    metadata: crdMeta,
    unrepresentable: 'throw',
    reused: 'inline',
    cycles: 'throw',
  });
  // A plain-data copy: zod shares one object between every use of a reused schema.
  const copy: unknown = JSON.parse(JSON.stringify(json));
  if (!isJson(copy)) throw new CrdSchemaError('', 'zod produced no object schema');
  return convert(copy, '');
}
