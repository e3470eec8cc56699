/**
 * Decides whether one generation of an Integration or SyncSchedule can run, before anything is
 * provisioned: the spec parses, its JSON Schemas and transform compile, its cron expression and
 * time zone are valid, and every Secret and ConfigMap key it references exists.
 *
 * Pure: references are looked up through the caller's cache, so the function can be called on
 * every reconcile and tested without a cluster. A failure names the exact field and carries the
 * condition reason; `dependency: true` marks failures that heal when another object appears
 * (a Secret, a ConfigMap) rather than when the spec is edited.
 */
import { Cron } from 'croner';
import {
  findSecretRefs,
  compileJsonata,
  compileJsonSchema,
  compileMapping,
  parseIntegrationSpec,
  parseSyncScheduleSpec,
  Reason,
  resolveIntegrationConfig,
  resolveSyncScheduleConfig,
  type ResolvedIntegrationConfig,
  type ResolvedSchemaSource,
  type ResolvedSyncScheduleConfig,
  type ResolvedTransform,
} from '../api/index.ts';
import { parse as parseYaml } from 'yaml';

export interface SpecProblem {
  readonly ok: false;
  readonly reason: Reason;
  readonly field: string;
  readonly message: string;
  /** True when creating or fixing another object (Secret, ConfigMap) can heal it. */
  readonly dependency: boolean;
}

export type SpecCheck<T> = { readonly ok: true; readonly config: T } | SpecProblem;

/** Read access to the Secrets and ConfigMaps of the object's namespace (the watch caches). */
export interface ReferenceLookup {
  secretData(namespace: string, name: string): Readonly<Record<string, string>> | undefined;
  configMapData(namespace: string, name: string): Readonly<Record<string, string>> | undefined;
  /** resourceVersion of a cached Secret or ConfigMap, to tell when a check must be redone. */
  readonly version?: (kind: 'Secret' | 'ConfigMap', namespace: string, name: string) => string | undefined;
}

function problem(reason: Reason, field: string, message: string, dependency = false): SpecProblem {
  return { ok: false, reason, field, message: `${field}: ${message}`, dependency };
}

function checkSecrets(namespace: string, spec: unknown, lookup: ReferenceLookup): SpecProblem | undefined {
  for (const ref of findSecretRefs(spec)) {
    const data = lookup.secretData(namespace, ref.name);
    if (!data) return problem(Reason.SecretNotFound, ref.field, `Secret ${JSON.stringify(ref.name)} not found in namespace ${JSON.stringify(namespace)}`, true);
    if (!(ref.key in data)) return problem(Reason.SecretNotFound, ref.field, `Secret ${JSON.stringify(ref.name)} has no key ${JSON.stringify(ref.key)}`, true);
  }
  return undefined;
}

/** Compiles the event schema, reading it from a ConfigMap when the spec says so. */
function checkSchema(namespace: string, schema: ResolvedSchemaSource | undefined, lookup: ReferenceLookup): SpecProblem | undefined {
  if (!schema) return undefined;
  if (schema.kind === 'inline') {
    const compiled = compileJsonSchema(schema.schema, 'spec.schema.inline');
    return compiled.ok ? undefined : problem(Reason.SchemaInvalid, compiled.field, compiled.message);
  }
  const field = 'spec.schema.configMapKeyRef';
  const data = lookup.configMapData(namespace, schema.ref.name);
  if (!data) return problem(Reason.ConfigMapNotFound, field, `ConfigMap ${JSON.stringify(schema.ref.name)} not found in namespace ${JSON.stringify(namespace)}`, true);
  const text = data[schema.ref.key];
  if (text === undefined) return problem(Reason.ConfigMapNotFound, field, `ConfigMap ${JSON.stringify(schema.ref.name)} has no key ${JSON.stringify(schema.ref.key)}`, true);
  let parsed: unknown;
  try {
    // YAML is a superset of JSON: one parser takes both forms people keep schemas in.
    parsed = parseYaml(text);
  } catch (err) {
    return problem(Reason.SchemaInvalid, field, `key ${JSON.stringify(schema.ref.key)} is not JSON or YAML: ${err instanceof Error ? err.message : 'parse error'}`, true);
  }
  const compiled = compileJsonSchema(parsed, `configMap ${schema.ref.name}/${schema.ref.key}`);
  return compiled.ok ? undefined : problem(Reason.SchemaInvalid, compiled.field, compiled.message, true);
}

function checkTransform(transform: ResolvedTransform | undefined): SpecProblem | undefined {
  if (!transform) return undefined;
  const compiled = transform.kind === 'mapping' ? compileMapping(transform.mapping, 'spec.transform.mapping') : compileJsonata(transform.expression, 'spec.transform.jsonata');
  return compiled.ok ? undefined : problem(Reason.TransformInvalid, compiled.field, compiled.message);
}

export function checkIntegrationSpec(namespace: string, rawSpec: unknown, lookup: ReferenceLookup): SpecCheck<ResolvedIntegrationConfig> {
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
  const failure =
    checkSchema(namespace, config.schema, lookup) ??
    (config.target.responseSchema === undefined
      ? undefined
      : ((): SpecProblem | undefined => {
          const compiled = compileJsonSchema(config.target.responseSchema, 'spec.target.responseSchema');
          return compiled.ok ? undefined : problem(Reason.SchemaInvalid, compiled.field, compiled.message);
        })()) ??
    checkTransform(config.transform) ??
    checkSecrets(namespace, parsed.spec, lookup);
  return failure ?? { ok: true, config };
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

export function checkSyncScheduleSpec(namespace: string, rawSpec: unknown, lookup: ReferenceLookup, now: Date): SpecCheck<ResolvedSyncScheduleConfig & { readonly nextRun: Date | undefined }> {
  const parsed = parseSyncScheduleSpec(rawSpec);
  if (!parsed.ok) return problem(Reason.SpecInvalid, parsed.error.field, parsed.error.detail);
  const config = resolveSyncScheduleConfig(parsed.spec);
  const timing = nextRun(config.schedule, config.timeZone, now);
  if (!timing.ok) return timing;
  const failure = checkSchema(namespace, config.schema, lookup) ?? checkTransform(config.transform) ?? checkSecrets(namespace, parsed.spec, lookup);
  return failure ?? { ok: true, config: { ...config, nextRun: timing.next } };
}
