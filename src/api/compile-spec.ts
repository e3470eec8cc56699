/**
 * Decides whether one generation of an Integration or SyncSchedule can run, and compiles what it
 * runs with: the spec parses, its JSON Schemas and transform compile, its templates parse, its
 * cron expression and time zone are valid, and every Secret and ConfigMap key it references
 * exists. ONE function per kind, used by both the controller (is this generation valid? — it
 * reports the problem as `Stalled` with the field) and the runtime (the validators, transform,
 * templates and credentials it runs with), so the two can never disagree about a spec.
 *
 * Pure: references are looked up through the caller's cache. Never throws for any input — a
 * failure is a {@link SpecProblem} naming the exact field and carrying the condition reason;
 * `dependency: true` marks failures that heal when another object appears or changes (a Secret,
 * a ConfigMap) rather than when the spec is edited.
 */
import { Cron } from 'croner';
import { parse as parseYaml } from 'yaml';
import type { SecretKeyRef } from './auth.ts';
import { compileJsonSchema, type CompileResult, type ValidateFunction } from './compile-schema.ts';
import { compileJsonata, compileMapping, type CompiledTransform } from './compile-transform.ts';
import { Reason } from './conditions.ts';
import { parseIntegrationSpec, parseSyncScheduleSpec } from './parse.ts';
import { findSecretRefs } from './references.ts';
import { subjectCaptured } from './subjects.ts';
import {
  resolveIntegrationConfig,
  resolveSyncScheduleConfig,
  type ResolvedAuth,
  type ResolvedIntegrationConfig,
  type ResolvedSchemaSource,
  type ResolvedSyncScheduleConfig,
  type ResolvedTransform,
} from './resolve.ts';
import { compileTemplate, type CompiledTemplate } from './template.ts';

export interface SpecProblem {
  readonly ok: false;
  readonly reason: Reason;
  readonly field: string;
  /** `<field>: <detail>`, as the Stalled condition shows it. */
  readonly message: string;
  /** The problem without its field. */
  readonly detail: string;
  /** True when creating or fixing another object (Secret, ConfigMap) can heal it. */
  readonly dependency: boolean;
}

export type SpecCheck<T> = { readonly ok: true; readonly config: T } | SpecProblem;

/** Read access to the Secrets and ConfigMaps of the object's namespace (the watch caches). */
export interface ReferenceLookup {
  /** A Secret's `data` as the API returns it (base64 values). */
  secretData(namespace: string, name: string): Readonly<Record<string, string>> | undefined;
  configMapData(namespace: string, name: string): Readonly<Record<string, string>> | undefined;
  /** resourceVersion of a cached Secret or ConfigMap, to tell when a check must be redone. */
  readonly version?: (kind: 'Secret' | 'ConfigMap', namespace: string, name: string) => string | undefined;
}

function problem(reason: Reason, field: string, message: string, dependency = false): SpecProblem {
  return { ok: false, reason, field, message: `${field}: ${message}`, detail: message, dependency };
}

function checkSecrets(namespace: string, spec: unknown, lookup: ReferenceLookup): SpecProblem | undefined {
  for (const ref of findSecretRefs(spec)) {
    const data = lookup.secretData(namespace, ref.name);
    if (!data) return problem(Reason.SecretNotFound, ref.field, `Secret ${JSON.stringify(ref.name)} not found in namespace ${JSON.stringify(namespace)}`, true);
    if (!(ref.key in data)) return problem(Reason.SecretNotFound, ref.field, `Secret ${JSON.stringify(ref.name)} has no key ${JSON.stringify(ref.key)}`, true);
  }
  return undefined;
}

/** What a schema compiled to, and the ConfigMap text it came from (kept with a last good generation). */
interface CompiledSchema {
  readonly validate: ValidateFunction | undefined;
  readonly configMapTexts: Readonly<Record<string, string>>;
}

/** How a JSON Schema is compiled: {@link compileJsonSchema}, or a cache in front of it (schema-cache.ts). */
export type SchemaCompiler = (schema: unknown, field: string) => CompileResult<ValidateFunction>;

/** Compiles the event schema, reading it from a ConfigMap when the spec says so. */
function compileSchemaSource(namespace: string, schema: ResolvedSchemaSource | undefined, lookup: ReferenceLookup, compileSchema: SchemaCompiler = compileJsonSchema): CompiledSchema | SpecProblem {
  if (!schema) return { validate: undefined, configMapTexts: {} };
  if (schema.kind === 'inline') {
    const compiled = compileSchema(schema.schema, 'spec.schema.inline');
    return compiled.ok ? { validate: compiled.value, configMapTexts: {} } : problem(Reason.SchemaInvalid, compiled.field, compiled.message);
  }
  const field = 'spec.schema.configMapKeyRef';
  const { name, key } = schema.ref;
  const data = lookup.configMapData(namespace, name);
  if (!data) return problem(Reason.ConfigMapNotFound, field, `ConfigMap ${JSON.stringify(name)} not found in namespace ${JSON.stringify(namespace)}`, true);
  const text = data[key];
  if (text === undefined) return problem(Reason.ConfigMapNotFound, field, `ConfigMap ${JSON.stringify(name)} has no key ${JSON.stringify(key)}`, true);
  let parsed: unknown;
  try {
    // YAML is a superset of JSON: one parser takes both forms people keep schemas in.
    parsed = parseYaml(text);
  } catch (err) {
    return problem(Reason.SchemaInvalid, field, `ConfigMap ${JSON.stringify(name)} key ${JSON.stringify(key)} is not JSON or YAML: ${err instanceof Error ? err.message : 'parse error'}`, true);
  }
  const compiled = compileSchema(parsed, `configMap ${name}/${key}`);
  if (!compiled.ok) return problem(Reason.SchemaInvalid, compiled.field, compiled.message, true);
  return { validate: compiled.value, configMapTexts: { [`${name}/${key}`]: text } };
}

function compileTransformSpec(transform: ResolvedTransform | undefined): { value: CompiledTransform | undefined } | SpecProblem {
  if (!transform) return { value: undefined };
  const compiled = transform.kind === 'mapping' ? compileMapping(transform.mapping, 'spec.transform.mapping') : compileJsonata(transform.expression, 'spec.transform.jsonata');
  return compiled.ok ? { value: compiled.value } : problem(Reason.TransformInvalid, compiled.field, compiled.message);
}

function compileTemplateAt(field: string, source: string | undefined): { value: CompiledTemplate | undefined } | SpecProblem {
  if (source === undefined) return { value: undefined };
  try {
    return { value: compileTemplate(source) };
  } catch (err) {
    return problem(Reason.SpecInvalid, field, err instanceof Error ? err.message : 'invalid template');
  }
}

/** Outbound credentials with their Secret values read. */
export type AuthCredentials =
  | { readonly kind: 'bearer'; readonly token: string }
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'apiKey'; readonly header: string; readonly key: string }
  | {
      readonly kind: 'oauth2ClientCredentials';
      readonly tokenUrl: string;
      readonly clientId: string;
      readonly clientSecret: string;
      readonly scopes: readonly string[];
      readonly audience: string | undefined;
    };

function readCredentials(namespace: string, auth: ResolvedAuth | undefined, lookup: ReferenceLookup): AuthCredentials | undefined {
  if (!auth) return undefined;
  // checkSecrets ran first: every key exists.
  const value = (ref: SecretKeyRef): string => Buffer.from(lookup.secretData(namespace, ref.name)?.[ref.key] ?? '', 'base64').toString('utf8');
  switch (auth.kind) {
    case 'bearer':
      return { kind: 'bearer', token: value(auth.token) };
    case 'basic':
      return { kind: 'basic', username: value(auth.username), password: value(auth.password) };
    case 'apiKey':
      return { kind: 'apiKey', header: auth.header, key: value(auth.key) };
    case 'oauth2ClientCredentials':
      return {
        kind: 'oauth2ClientCredentials',
        tokenUrl: auth.tokenUrl,
        clientId: auth.clientId,
        clientSecret: value(auth.clientSecret),
        scopes: auth.scopes,
        audience: auth.audience,
      };
  }
}

/** One Integration generation, compiled. Holds Secret values: keep it in memory only, never log it. */
export interface CompiledIntegrationSpec {
  readonly config: ResolvedIntegrationConfig;
  readonly validate: ValidateFunction | undefined;
  readonly validateResponse: ValidateFunction | undefined;
  /** Undefined: the event payload is sent as it is. */
  readonly transform: CompiledTransform | undefined;
  readonly url: CompiledTemplate;
  readonly idempotencyKey: CompiledTemplate | undefined;
  readonly credentials: AuthCredentials | undefined;
  /** The text of every ConfigMap key the generation read (`name/key` → text). */
  readonly configMapTexts: Readonly<Record<string, string>>;
}

/**
 * Checks and compiles one Integration generation; see the file header. `compileSchema` lets a
 * long-lived caller share validators between objects with the same schema (JsonSchemaCache).
 */
export function compileIntegrationSpec(namespace: string, rawSpec: unknown, lookup: ReferenceLookup, compileSchema: SchemaCompiler = compileJsonSchema): SpecCheck<CompiledIntegrationSpec> {
  const parsed = parseIntegrationSpec(rawSpec);
  if (!parsed.ok) return problem(Reason.SpecInvalid, parsed.error.field, parsed.error.detail);
  const config = resolveIntegrationConfig(parsed.spec);
  if (config.delivery.orderingKey !== undefined) {
    // Loud rather than silently unordered: a user who asks for ordering relies on it.
    return problem(
      Reason.SpecInvalid,
      'spec.delivery.orderingKey',
      'ordered delivery is not supported by this operator version yet; remove the field to deliver concurrently',
    );
  }
  const webhook = config.source.webhook;
  if (webhook !== undefined && !subjectCaptured(config.source.subjects, webhook.subject)) {
    // Verified requests would be stored and never consumed: refuse rather than lose them quietly.
    return problem(
      Reason.SpecInvalid,
      'spec.source.webhook.subject',
      `${JSON.stringify(webhook.subject)} is not matched by spec.source.subjects (${config.source.subjects.join(', ')}): webhook events would be stored but never delivered`,
    );
  }
  const schema = compileSchemaSource(namespace, config.schema, lookup, compileSchema);
  if ('ok' in schema) return schema;
  let validateResponse: ValidateFunction | undefined;
  if (config.target.responseSchema !== undefined) {
    const compiled = compileSchema(config.target.responseSchema, 'spec.target.responseSchema');
    if (!compiled.ok) return problem(Reason.SchemaInvalid, compiled.field, compiled.message);
    validateResponse = compiled.value;
  }
  const transform = compileTransformSpec(config.transform);
  if ('ok' in transform) return transform;
  const url = compileTemplateAt('spec.target.url', config.target.url);
  if ('ok' in url) return url;
  const key = compileTemplateAt('spec.target.idempotency.key', config.target.idempotency.keyTemplate);
  if ('ok' in key) return key;
  const secrets = checkSecrets(namespace, parsed.spec, lookup);
  if (secrets) return secrets;
  return {
    ok: true,
    config: {
      config,
      validate: schema.validate,
      validateResponse,
      transform: transform.value,
      // compileTemplateAt returns a value for a defined source.
      url: url.value ?? compileTemplate(config.target.url),
      idempotencyKey: key.value,
      credentials: readCredentials(namespace, config.target.auth, lookup),
      configMapTexts: schema.configMapTexts,
    },
  };
}

/** The next time the schedule fires after `from`, or a problem naming the field. */
export function nextRun(schedule: string, timeZone: string, from: Date): { ok: true; next: Date | undefined } | SpecProblem {
  try {
    Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    return problem(Reason.SpecInvalid, 'spec.timeZone', `${JSON.stringify(timeZone)} is not an IANA time zone such as Europe/Berlin`);
  }
  try {
    const cron = new Cron(schedule, { timezone: timeZone, paused: true });
    return { ok: true, next: cron.nextRun(from) ?? undefined };
  } catch (err) {
    return problem(Reason.SpecInvalid, 'spec.schedule', `${JSON.stringify(schedule)} is not a cron expression: ${err instanceof Error ? err.message : 'invalid'}`);
  }
}

/** One SyncSchedule generation, compiled. Holds Secret values: keep it in memory only, never log it. */
export interface CompiledSyncScheduleSpec extends ResolvedSyncScheduleConfig {
  /** The first scheduled run after the check's `now`. */
  readonly nextRun: Date | undefined;
  readonly validate: ValidateFunction | undefined;
  /** Undefined: records are written as read. */
  readonly compiledTransform: CompiledTransform | undefined;
  readonly url: CompiledTemplate;
  readonly deleteUrlTemplate: CompiledTemplate;
  readonly sourceCredentials: AuthCredentials | undefined;
  readonly targetCredentials: AuthCredentials | undefined;
  readonly configMapTexts: Readonly<Record<string, string>>;
}

/** Checks and compiles one SyncSchedule generation; see the file header. */
export function checkSyncScheduleSpec(namespace: string, rawSpec: unknown, lookup: ReferenceLookup, now: Date): SpecCheck<CompiledSyncScheduleSpec> {
  const parsed = parseSyncScheduleSpec(rawSpec);
  if (!parsed.ok) return problem(Reason.SpecInvalid, parsed.error.field, parsed.error.detail);
  const config = resolveSyncScheduleConfig(parsed.spec);
  const timing = nextRun(config.schedule, config.timeZone, now);
  if (!timing.ok) return timing;
  const schema = compileSchemaSource(namespace, config.schema, lookup);
  if ('ok' in schema) return schema;
  const transform = compileTransformSpec(config.transform);
  if ('ok' in transform) return transform;
  const url = compileTemplateAt('spec.target.url', config.target.url);
  if ('ok' in url) return url;
  const deleteUrl = compileTemplateAt('spec.target.deleteUrl', config.target.deleteUrl);
  if ('ok' in deleteUrl) return deleteUrl;
  const secrets = checkSecrets(namespace, parsed.spec, lookup);
  if (secrets) return secrets;
  return {
    ok: true,
    config: {
      ...config,
      nextRun: timing.next,
      validate: schema.validate,
      compiledTransform: transform.value,
      url: url.value ?? compileTemplate(config.target.url),
      deleteUrlTemplate: deleteUrl.value ?? compileTemplate(config.target.deleteUrl),
      sourceCredentials: readCredentials(namespace, config.source.auth, lookup),
      targetCredentials: readCredentials(namespace, config.target.auth, lookup),
      configMapTexts: schema.configMapTexts,
    },
  };
}
