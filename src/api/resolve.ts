/**
 * Parsed spec → the normalised configuration the runtime and sync engine run with: durations in
 * milliseconds, "exactly one of" objects turned into tagged unions, defaults that depend on other
 * fields filled in, and the Secrets and ConfigMaps the spec needs. Pure functions; they take
 * specs from `parse*Spec` and are called once per generation.
 *
 * Enum values are translated here, once: a spec speaks the Kubernetes API conventions
 * (CamelCase: `JSON`, `CloudEvents`, `Full`, `Repair`), the resolved config speaks the
 * vocabularies the runtime, delivery and sync code already use (`json`, `cloudevents`, `full`,
 * `repair`). So the CRD can follow its conventions without the pipelines knowing.
 */
import type { Auth, ConfigMapKeyRef, SecretKeyRef } from './auth.ts';
import { parseDuration } from './duration.ts';
import { SpecInvalidError } from './errors.ts';
import type { RateLimit } from './http.ts';
import type { IntegrationSpec } from './integration.ts';
import type { SchemaSource, Transform } from './pipeline.ts';
import { deletesSchema, type SyncScheduleSpec } from './sync-schedule.ts';
import { INTEGRATION, SYNC_SCHEDULE, type FerryKind } from './constants.ts';

// CRD enum value → internal value. `satisfies` makes each table exhaustive: a value added to a
// zod enum without a translation here does not compile.
const EVENT_FORMAT = { JSON: 'json', CloudEvents: 'cloudevents' } as const satisfies Record<IntegrationSpec['source']['format'], string>;
const BODY_ENCODING = { JSON: 'json', Form: 'form' } as const satisfies Record<IntegrationSpec['target']['encoding'], string>;
const JITTER = { Full: 'full', Equal: 'equal', None: 'none' } as const satisfies Record<IntegrationSpec['delivery']['backoff']['jitter'], string>;
type Signature = NonNullable<IntegrationSpec['source']['webhook']>['signature'];
const SIGNATURE_SCHEME = { StandardWebhooks: 'standardWebhooks', HMAC: 'hmac', Stripe: 'stripe' } as const satisfies Record<Signature['scheme'], string>;
const SIGNATURE_ALGORITHM = { SHA256: 'sha256', SHA1: 'sha1', SHA512: 'sha512' } as const satisfies Record<NonNullable<Signature['algorithm']>, string>;
const SIGNATURE_ENCODING = { Hex: 'hex', Base64: 'base64' } as const satisfies Record<NonNullable<Signature['encoding']>, string>;
const SYNC_MODE = { Upsert: 'upsert', Update: 'update', Insert: 'insert', Mirror: 'mirror' } as const satisfies Record<SyncScheduleSpec['mode'], string>;
const RECONCILE_MODE = { None: 'none', Report: 'report', Repair: 'repair' } as const satisfies Record<SyncScheduleSpec['reconcile']['mode'], string>;
type Pagination = NonNullable<SyncScheduleSpec['source']['pagination']>;
const PAGINATION = { Cursor: 'cursor', Page: 'page', Offset: 'offset', LinkHeader: 'linkHeader', NextUrl: 'nextUrl' } as const satisfies Record<Pagination['type'], string>;
type Incremental = NonNullable<SyncScheduleSpec['source']['incremental']>;
const CURSOR_FORMAT = { RFC3339: 'rfc3339', UnixSeconds: 'unixSeconds', UnixMillis: 'unixMillis' } as const satisfies Record<Incremental['format'], string>;

/** Time limit for a jsonata transform that does not set one. */
export const DEFAULT_TRANSFORM_TIMEOUT_MS = 1_000;

function invariant(kind: FerryKind, field: string, message: string): SpecInvalidError {
  return new SpecInvalidError(kind, [{ field, message }]);
}

/** `auth` as a tagged union. */
export function resolveAuth(auth: Auth | undefined, kind: FerryKind, field: string) {
  if (auth === undefined) return undefined;
  if (auth.bearer) return { kind: 'bearer' as const, token: auth.bearer.secretKeyRef };
  if (auth.basic) return { kind: 'basic' as const, username: auth.basic.usernameSecretKeyRef, password: auth.basic.passwordSecretKeyRef };
  if (auth.apiKey) return { kind: 'apiKey' as const, header: auth.apiKey.header, key: auth.apiKey.secretKeyRef };
  if (auth.oauth2ClientCredentials) {
    const o = auth.oauth2ClientCredentials;
    return {
      kind: 'oauth2ClientCredentials' as const,
      tokenUrl: o.tokenUrl,
      clientId: o.clientId,
      clientSecret: o.clientSecretRef,
      scopes: o.scopes ?? [],
      audience: o.audience,
    };
  }
  // Parsing rejects this; reaching it means the spec skipped parsing.
  throw invariant(kind, field, 'auth must set exactly one of bearer, basic, apiKey or oauth2ClientCredentials');
}
export type ResolvedAuth = NonNullable<ReturnType<typeof resolveAuth>>;

/** `transform` as a tagged union. */
export function resolveTransform(transform: Transform, kind: FerryKind) {
  if (transform.mapping !== undefined && transform.jsonata === undefined) return { kind: 'mapping' as const, mapping: transform.mapping };
  if (transform.jsonata !== undefined && transform.mapping === undefined) {
    const timeoutMs = transform.timeout === undefined ? DEFAULT_TRANSFORM_TIMEOUT_MS : parseDuration(transform.timeout);
    return { kind: 'jsonata' as const, expression: transform.jsonata, timeoutMs };
  }
  throw invariant(kind, 'spec.transform', 'transform must set exactly one of mapping or jsonata');
}
export type ResolvedTransform = ReturnType<typeof resolveTransform>;

/** `schema` as a tagged union. */
export function resolveSchemaSource(schema: SchemaSource | undefined, kind: FerryKind) {
  if (schema === undefined) return undefined;
  if (schema.inline !== undefined && schema.configMapKeyRef === undefined) return { kind: 'inline' as const, schema: schema.inline };
  if (schema.configMapKeyRef !== undefined && schema.inline === undefined) return { kind: 'configMap' as const, ref: schema.configMapKeyRef };
  throw invariant(kind, 'spec.schema', 'schema must set exactly one of inline or configMapKeyRef');
}
export type ResolvedSchemaSource = NonNullable<ReturnType<typeof resolveSchemaSource>>;

/** A rate limit with its burst filled in: one second's worth of requests, at least 1. */
export function resolveRateLimit(rateLimit: RateLimit | undefined) {
  if (rateLimit === undefined) return undefined;
  return { perSecond: rateLimit.perSecond, burst: rateLimit.burst ?? Math.max(1, Math.ceil(rateLimit.perSecond)) };
}
export type ResolvedRateLimit = NonNullable<ReturnType<typeof resolveRateLimit>>;

/** `retryOn` split into what the delivery layer checks. */
export function resolveRetryOn(retryOn: IntegrationSpec['delivery']['retryOn']) {
  return {
    statusCodes: [...new Set(retryOn.filter((r): r is number => typeof r === 'number'))].sort((a, b) => a - b),
    serverErrors: retryOn.includes('5xx'),
    network: retryOn.includes('Network'),
    timeout: retryOn.includes('Timeout'),
  };
}
export type ResolvedRetryOn = ReturnType<typeof resolveRetryOn>;

function uniqueRefs<T extends { name: string; key: string }>(refs: readonly (T | undefined)[]): T[] {
  const seen = new Map<string, T>();
  for (const ref of refs) if (ref) seen.set(`${ref.name}\u0000${ref.key}`, ref);
  return [...seen.values()];
}

function authSecrets(auth: ResolvedAuth | undefined): SecretKeyRef[] {
  switch (auth?.kind) {
    case undefined:
      return [];
    case 'bearer':
      return [auth.token];
    case 'basic':
      return [auth.username, auth.password];
    case 'apiKey':
      return [auth.key];
    case 'oauth2ClientCredentials':
      return [auth.clientSecret];
  }
}

function configMapRefs(schema: ResolvedSchemaSource | undefined): ConfigMapKeyRef[] {
  return schema?.kind === 'configMap' ? [schema.ref] : [];
}

/**
 * `source.startAt` as a tagged union: where a new durable consumer starts (an existing one keeps
 * its position; the CRD makes the field immutable).
 */
export function resolveStartAt(startAt: IntegrationSpec['source']['startAt']) {
  if (startAt === 'Beginning') return { kind: 'beginning' as const };
  if (startAt === 'New') return { kind: 'new' as const };
  const timeMs = Date.parse(startAt);
  // Parsing accepted only RFC 3339 times that exist; reaching this means the spec skipped it.
  if (Number.isNaN(timeMs)) throw invariant(INTEGRATION.kind, 'spec.source.startAt', 'must be Beginning, New or an RFC 3339 time');
  return { kind: 'time' as const, timeMs };
}
export type ResolvedStartAt = ReturnType<typeof resolveStartAt>;

function resolveWebhook(spec: IntegrationSpec) {
  const webhook = spec.source.webhook;
  if (webhook === undefined) return undefined;
  const { signature } = webhook;
  const scheme = SIGNATURE_SCHEME[signature.scheme];
  // Standard Webhooks and Stripe fix their headers, hash and encoding; plain HMAC schemes name theirs.
  const fixed: Record<typeof scheme, { header: string; algorithm: (typeof SIGNATURE_ALGORITHM)[keyof typeof SIGNATURE_ALGORITHM]; encoding: (typeof SIGNATURE_ENCODING)[keyof typeof SIGNATURE_ENCODING] }> = {
    standardWebhooks: { header: 'webhook-signature', algorithm: 'sha256', encoding: 'base64' },
    stripe: { header: 'stripe-signature', algorithm: 'sha256', encoding: 'hex' },
    hmac: {
      header: (signature.header ?? '').toLowerCase(),
      algorithm: SIGNATURE_ALGORITHM[signature.algorithm ?? 'SHA256'],
      encoding: SIGNATURE_ENCODING[signature.encoding ?? 'Hex'],
    },
  };
  const { header, algorithm, encoding } = fixed[scheme];
  return {
    subject: webhook.subject,
    signature: {
      scheme,
      secrets: signature.secretKeyRefs,
      /** Lower case, as Node's `IncomingMessage.headers` names them. */
      header,
      algorithm,
      prefix: signature.prefix ?? '',
      encoding,
    },
    /** Lower case; undefined: the scheme's own id (webhook-id, Stripe's event id) or a hash. */
    idHeader: (webhook.idHeader ?? (scheme === 'standardWebhooks' ? 'webhook-id' : undefined))?.toLowerCase(),
    toleranceMs: parseDuration(webhook.tolerance),
    maxBodyBytes: webhook.maxBodyBytes,
    rateLimit: webhook.rateLimit === undefined ? undefined : { perSecond: webhook.rateLimit.perSecond, burst: webhook.rateLimit.burst ?? Math.max(1, Math.ceil(webhook.rateLimit.perSecond)) },
  };
}
export type ResolvedWebhook = NonNullable<ReturnType<typeof resolveWebhook>>;

/**
 * The runtime configuration of an Integration. Deterministic: equal specs give equal configs,
 * so a caller may compare them to decide whether a pipeline must restart.
 *
 * @throws SpecInvalidError only for a spec that did not come from `parseIntegrationSpec`.
 */
export function resolveIntegrationConfig(spec: IntegrationSpec) {
  const kind = INTEGRATION.kind;
  const { source, target, delivery } = spec;
  const auth = resolveAuth(target.auth, kind, 'spec.target.auth');
  const schema = resolveSchemaSource(spec.schema, kind);
  const webhook = resolveWebhook(spec);
  return {
    source: {
      stream: source.stream,
      subjects: source.subjects,
      format: EVENT_FORMAT[source.format],
      create: source.create,
      startAt: resolveStartAt(source.startAt),
      webhook,
    },
    schema,
    /** `undefined`: the event payload is delivered as is. */
    transform: spec.transform === undefined ? undefined : resolveTransform(spec.transform, kind),
    target: {
      url: target.url,
      method: target.method,
      encoding: BODY_ENCODING[target.encoding],
      headers: target.headers ?? {},
      auth,
      timeoutMs: parseDuration(target.timeout),
      idempotency: { header: target.idempotency.header, keyTemplate: target.idempotency.key },
      successCodes: target.successCodes,
      responseSchema: target.responseSchema,
    },
    delivery: {
      concurrency: delivery.concurrency,
      maxAttempts: delivery.maxAttempts,
      backoff: {
        initialMs: parseDuration(delivery.backoff.initial),
        maxMs: parseDuration(delivery.backoff.max),
        multiplier: delivery.backoff.multiplier,
        jitter: JITTER[delivery.backoff.jitter],
      },
      maxElapsedMs: parseDuration(delivery.maxElapsed),
      rateLimit: resolveRateLimit(delivery.rateLimit),
      retryAfterMaxMs: parseDuration(delivery.retryAfterMax),
      retryOn: resolveRetryOn(delivery.retryOn),
      circuitBreaker: {
        failures: delivery.circuitBreaker.failures,
        windowMs: parseDuration(delivery.circuitBreaker.window),
        openForMs: parseDuration(delivery.circuitBreaker.openFor),
      },
      orderingKey: delivery.orderingKey,
    },
    fallback: { retentionMs: parseDuration(spec.fallback.retention) },
    sla: resolveSla(spec.sla),
    suspend: spec.suspend,
    /** Every Secret key the Integration needs; a missing one means Stalled. */
    secretRefs: uniqueRefs([...authSecrets(auth), ...(webhook?.signature.secrets ?? [])]),
    /** Every ConfigMap key the Integration needs. */
    configMapRefs: configMapRefs(schema),
  };
}
/** spec.sla in milliseconds; undefined when no SLA is set. */
export function resolveSla(sla: IntegrationSpec['sla']): ResolvedSla | undefined {
  return sla === undefined ? undefined : { deliverWithinMs: parseDuration(sla.deliverWithin), windowMs: parseDuration(sla.window), maxLatePercent: sla.maxLatePercent };
}
export interface ResolvedSla {
  readonly deliverWithinMs: number;
  readonly windowMs: number;
  readonly maxLatePercent: number;
}
export type ResolvedIntegrationConfig = ReturnType<typeof resolveIntegrationConfig>;

function resolvePagination(pagination: Pagination | undefined) {
  if (pagination === undefined) return undefined;
  return { ...pagination, type: PAGINATION[pagination.type], start: pagination.start ?? (pagination.type === 'Page' ? 1 : 0) };
}

/**
 * The run configuration of a SyncSchedule. Deterministic, like {@link resolveIntegrationConfig}.
 *
 * @throws SpecInvalidError only for a spec that did not come from `parseSyncScheduleSpec`.
 */
export function resolveSyncScheduleConfig(spec: SyncScheduleSpec) {
  const kind = SYNC_SCHEDULE.kind;
  const { source, target } = spec;
  const sourceAuth = resolveAuth(source.auth, kind, 'spec.source.auth');
  const targetAuth = resolveAuth(target.auth, kind, 'spec.target.auth');
  const schema = resolveSchemaSource(spec.schema, kind);
  // Mirror mode always has thresholds: an absent `deletes` means the schema's defaults.
  const deletes = spec.mode === 'Mirror' ? (spec.deletes ?? deletesSchema.parse({})) : undefined;
  return {
    schedule: spec.schedule,
    timeZone: spec.timeZone ?? 'UTC',
    suspend: spec.suspend,
    concurrencyPolicy: spec.concurrencyPolicy,
    startingDeadlineMs: spec.startingDeadline === undefined ? undefined : parseDuration(spec.startingDeadline),
    source: {
      url: source.url,
      headers: source.headers ?? {},
      auth: sourceAuth,
      timeoutMs: parseDuration(source.timeout),
      rateLimit: resolveRateLimit(source.rateLimit),
      pagination: resolvePagination(source.pagination),
      incremental:
        source.incremental === undefined
          ? undefined
          : {
              param: source.incremental.param,
              field: source.incremental.field,
              format: CURSOR_FORMAT[source.incremental.format],
              lookbackMs: parseDuration(source.incremental.lookback),
              safetyLagMs: parseDuration(source.incremental.safetyLag),
            },
      recordsPath: source.recordsPath,
    },
    key: spec.key,
    schema,
    /** `undefined`: records are written as read. */
    transform: spec.transform === undefined ? undefined : resolveTransform(spec.transform, kind),
    target: {
      url: target.url,
      method: target.method,
      encoding: BODY_ENCODING[target.encoding],
      headers: target.headers ?? {},
      auth: targetAuth,
      timeoutMs: parseDuration(target.timeout),
      successCodes: target.successCodes,
      deleteUrl: target.deleteUrl ?? target.url,
      lookup: target.lookup === undefined ? undefined : { ...target.lookup, pagination: resolvePagination(target.lookup.pagination) },
    },
    mode: SYNC_MODE[spec.mode],
    deletes,
    batchSize: spec.batch.size,
    batch: spec.batch,
    rateLimit: resolveRateLimit(spec.rateLimit),
    reconcile: { mode: RECONCILE_MODE[spec.reconcile.mode], dryRun: spec.reconcile.dryRun },
    failedRecordsMaxAttempts: spec.failedRecords.maxAttempts,
    fallback: { retentionMs: parseDuration(spec.fallback.retention) },
    secretRefs: uniqueRefs([...authSecrets(sourceAuth), ...authSecrets(targetAuth)]),
    configMapRefs: configMapRefs(schema),
  };
}
export type ResolvedSyncScheduleConfig = ReturnType<typeof resolveSyncScheduleConfig>;
