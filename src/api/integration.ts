/**
 * The Integration kind: consume events from a JetStream stream → validate → transform → deliver
 * over HTTP with retries, throttling and a circuit breaker → park what cannot be delivered in a
 * fallback stream. `integrationSpecSchema` is the single source of the TypeScript types, the
 * parser (`parseIntegrationSpec`) and the CRD schema.
 */
import { z } from 'zod';
import { authSchema, secretKeyRefSchema } from './auth.ts';
import { annotate, describe, matching, withRules } from './crd-meta.ts';
import { conditionsSchema } from './conditions.ts';
import { celDurationMillis, parseDuration, positiveDurationSchema } from './duration.ts';
import { fieldPointerSchema, freeFormObjectSchema, headerNameSchema, headersSchema, textTemplateSchema, urlTemplateSchema } from './fields.ts';
import { DEFAULT_SUCCESS_CODES, encodingSchema, rateLimitSchema, successCodesSchema, writeMethodSchema } from './http.ts';
import { objectMetaSchema } from './object-meta.ts';
import { fallbackSchema, schemaSourceSchema, transformSchema } from './pipeline.ts';
import { countSchema, INITIAL_STATUS, observedGenerationSchema } from './status.ts';
import { timeSchema } from './time.ts';
import { API_VERSION, INTEGRATION } from './constants.ts';

// NATS names: no whitespace, and none of the characters NATS gives a meaning to.
const streamNameSchema = matching(
  z.string().min(1, 'must not be empty').max(255),
  /^[^\s.*>/\\]+$/,
  'must be a JetStream stream name (no whitespace, ".", "*", ">", "/" or "\\")',
);
const subjectSchema = matching(
  z.string().min(1, 'must not be empty').max(255),
  /^[^\s.]+(\.[^\s.]+)*$/,
  'must be a NATS subject such as crm.deals.closed (wildcards * and > allowed)',
);
const literalSubjectSchema = matching(
  z.string().min(1, 'must not be empty').max(255),
  /^[^\s.*>]+(\.[^\s.*>]+)*$/,
  'must be a NATS subject without wildcards',
);

/**
 * Signature verification for webhook requests, on the raw body before anything parses it.
 * `StandardWebhooks` follows the Standard Webhooks 1.0 spec (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature`; key = the base64 after `whsec_`); `Stripe` reads `Stripe-Signature`
 * (`t=…,v1=…`, HMAC-SHA256 of `{t}.{body}` keyed by the whole secret); `HMAC` is a plain HMAC of
 * the body in `header`, optionally after `prefix` (GitHub: `X-Hub-Signature-256`, `sha256=`;
 * Shopify: `X-Shopify-Hmac-Sha256`, Base64). Two secrets allow rotation: either is accepted.
 */
const webhookSignatureSchema = describe(withRules(
  z.strictObject({
    scheme: describe(
      z.enum(['StandardWebhooks', 'HMAC', 'Stripe']),
      'StandardWebhooks (webhook-id, webhook-timestamp and webhook-signature headers), Stripe (Stripe-Signature header) or HMAC (an HMAC of the body in header).',
    ).default('StandardWebhooks'),
    secretKeyRefs: describe(z.array(secretKeyRefSchema).min(1).max(2), 'Signing secrets; with two, a signature by either is accepted (rotation).'),
    header: describe(headerNameSchema, 'HMAC only: request header that carries the signature, such as X-Hub-Signature-256 (required).').optional(),
    algorithm: describe(z.enum(['SHA256', 'SHA1', 'SHA512']), 'HMAC only: hash function (default SHA256).').optional(),
    prefix: describe(z.string().max(32), 'HMAC only: text before the signature in header, such as sha256=.').optional(),
    encoding: describe(z.enum(['Hex', 'Base64']), 'HMAC only: how the signature is written (default Hex).').optional(),
  }),
  [
    {
      rule: "!has(self.scheme) || self.scheme != 'HMAC' || has(self.header)",
      message: 'HMAC signatures need header (the request header that carries the signature)',
      fieldPath: '.header',
      reason: 'FieldValueRequired',
      holds: (s) => s.scheme !== 'HMAC' || s.header !== undefined,
    },
    {
      rule: "(has(self.scheme) && self.scheme == 'HMAC') || (!has(self.header) && !has(self.algorithm) && !has(self.prefix) && !has(self.encoding))",
      message: 'header, algorithm, prefix and encoding apply only to scheme HMAC (StandardWebhooks and Stripe fix their own)',
      holds: (s) => s.scheme === 'HMAC' || (s.header === undefined && s.algorithm === undefined && s.prefix === undefined && s.encoding === undefined),
    },
  ],
), 'How requests are verified; unsigned or stale requests are refused.');

/** Webhook ingress: `POST /hooks/<namespace>/<name>` publishes verified requests to `subject`. */
const webhookSchema = describe(
  z.strictObject({
    subject: describe(literalSubjectSchema, 'Subject verified requests are published to (no wildcards); the stream and spec.source.subjects must capture it.'),
    signature: webhookSignatureSchema,
    idHeader: describe(
      headerNameSchema,
      'Header whose value deduplicates redeliveries, such as X-GitHub-Delivery (default: webhook-id for StandardWebhooks, the body\'s id for Stripe, else a hash of timestamp and body).',
    ).optional(),
    tolerance: describe(positiveDurationSchema, 'StandardWebhooks and Stripe: how far a signed timestamp may be from now, either way (older: a replay; newer: a wrong clock).').default('5m'),
    maxBodyBytes: describe(z.int().min(1_024).max(10_485_760), 'Largest request body accepted, in bytes.').default(1_048_576),
    rateLimit: describe(
      z.strictObject({
        perSecond: describe(z.number().min(0.001).max(100_000), 'Requests per second accepted by each operator replica.'),
        burst: describe(z.int().min(1).max(100_000), 'Requests accepted at once above the steady rate (default: one second of requests).').optional(),
      }),
      'Requests above this rate are answered 429 with Retry-After (per operator replica).',
    ).optional(),
  }),
  'Receive events over HTTP: verified requests are published to subject (answered 202 after the stream stored them). Needs the operator flag --webhook-address.',
);

const START_AT_MESSAGE = 'must be Beginning, New or an RFC 3339 time such as 2024-06-01T12:00:00Z';
// RFC 3339 with a time zone, each field in range. Whether the day exists in its month (Feb 30)
// only zod checks: the API server accepts such a date and the operator reports it as Stalled.
const RFC3339 = '[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])';
const START_AT_PATTERN = new RegExp(`^(Beginning|New|${RFC3339})$`);

/**
 * Where a new durable consumer starts reading. Fixed once the consumer exists: JetStream cannot
 * move a consumer's start, so a change would silently mean nothing. The CRD refuses it (a
 * transition rule: `parse*Spec` sees one version and cannot check it).
 */
const startAtSchema = annotate(
  describe(
    matching(
      z
        .string()
        .min(1, START_AT_MESSAGE)
        .max(64, START_AT_MESSAGE)
        .refine((v) => !START_AT_PATTERN.test(v) || v === 'Beginning' || v === 'New' || timeSchema.safeParse(v).success, START_AT_MESSAGE),
      START_AT_PATTERN,
      START_AT_MESSAGE,
    ),
    'Where a new consumer starts: Beginning (every event in the stream), New (only events published after it is created) or an RFC 3339 time. Immutable; to rewind, delete the Integration and create it again with a time.',
  ),
  {
    'x-kubernetes-validations': [
      {
        rule: 'self == oldSelf',
        message: 'startAt is immutable: it only says where a new consumer starts. To rewind, delete the Integration and create it again with startAt set to a time',
      },
    ],
  },
);

const sourceSchema = describe(z.strictObject({
  stream: describe(streamNameSchema, 'JetStream stream to consume (created when create is true).'),
  subjects: describe(z.array(subjectSchema).min(1).max(16), 'Subjects to consume from the stream (wildcards * and > allowed).'),
  format: describe(z.enum(['JSON', 'CloudEvents']), 'JSON, or CloudEvents (binary or structured mode).').default('JSON'),
  create: describe(z.boolean(), 'Create the stream with these subjects when it does not exist.').default(false),
  startAt: startAtSchema.default('New'),
  webhook: webhookSchema.optional(),
}), 'Where events come from: a JetStream stream (fed by your publishers or by the webhook receiver).');

const targetSchema = describe(z.strictObject({
  url: urlTemplateSchema,
  method: writeMethodSchema.default('POST'),
  encoding: encodingSchema.default('JSON'),
  headers: headersSchema.optional(),
  auth: authSchema.optional(),
  timeout: describe(positiveDurationSchema, 'Time limit for one request.').default('10s'),
  idempotency: describe(
    z.strictObject({
      header: describe(headerNameSchema, 'Request header that carries the key.').default('Idempotency-Key'),
      key: describe(
        textTemplateSchema,
        'Key template such as {{/id}}-invoice. Default: Nats-Msg-Id, else CloudEvents source+id, else stream:sequence.',
      ).optional(),
    }),
    'Idempotency key sent with every attempt (retries and redrives reuse it).',
  ).prefault({}),
  successCodes: successCodesSchema.default(DEFAULT_SUCCESS_CODES),
  responseSchema: describe(
    freeFormObjectSchema,
    'JSON Schema a 2xx response body must satisfy; a response that breaks it is a failure (contract drift). Regexes use RE2 syntax.',
  ).optional(),
}), 'Where and how each event is delivered: one HTTP request per event.');

const RETRY_ON_WORDS = ['5xx', 'Network', 'Timeout'] as const;
const RETRY_ON_MESSAGE = 'must be an HTTP status code from 400 to 599, "5xx", "Network" or "Timeout"';

// zod checks each item itself; the CRD needs CEL because an int-or-string field takes no other
// constraints in a structural schema.
const retryOnItemSchema = annotate(
  z.union([z.int().min(400, RETRY_ON_MESSAGE).max(599, RETRY_ON_MESSAGE), z.enum(RETRY_ON_WORDS)], { error: RETRY_ON_MESSAGE }),
  {
    'x-kubernetes-int-or-string': true,
    // Bounds the string side for the CEL cost estimate.
    maxLength: 16,
    'x-kubernetes-validations': [
      {
        rule: `type(self) == int ? (self >= 400 && self <= 599) : self in [${RETRY_ON_WORDS.map((w) => `'${w}'`).join(', ')}]`,
        message: RETRY_ON_MESSAGE,
      },
    ],
  },
);

const backoffSchema = describe(
  withRules(
    z.strictObject({
      initial: describe(positiveDurationSchema, 'Delay before the first retry.').default('1s'),
      max: describe(positiveDurationSchema, 'Longest delay between attempts.').default('5m'),
      multiplier: describe(z.number().min(1).max(10), 'Factor by which the delay grows per attempt.').default(2),
      jitter: describe(
        z.enum(['Full', 'Equal', 'None']),
        'Randomness in each delay d: Full picks from [0, d], Equal from [d/2, d], None waits exactly d.',
      ).default('Full'),
    }),
    [
      {
        rule: `!has(self.initial) || !has(self.max) || ${celDurationMillis('self.initial')} <= ${celDurationMillis('self.max')}`,
        message: 'initial must not be greater than max',
        fieldPath: '.initial',
        holds: (b) => parseDuration(b.initial) <= parseDuration(b.max),
      },
    ],
  ),
  'Delay before retry n: min(max, initial × multiplier^(n-1)), with jitter.',
);

const circuitBreakerSchema = describe(
  z.strictObject({
    failures: describe(z.int().min(1).max(10_000), 'Failed deliveries within window that open the circuit.').default(5),
    window: describe(positiveDurationSchema, 'Time window in which failures are counted.').default('30s'),
    openFor: describe(positiveDurationSchema, 'How long consumption pauses once the circuit opens.').default('60s'),
  }),
  'After failures failed deliveries within window, consumption pauses for openFor, then one probe is let through.',
);

const deliverySchema = describe(z.strictObject({
  concurrency: describe(z.int().min(1).max(1_024), 'Deliveries in flight per replica.').default(8),
  maxAttempts: describe(z.int().min(1).max(100), 'Attempts per event, the first included, before it is parked with reason exhausted.').default(5),
  backoff: backoffSchema.prefault({}),
  maxElapsed: describe(positiveDurationSchema, 'Stop retrying an event this long after its first attempt.').default('1h'),
  rateLimit: describe(rateLimitSchema, 'Shared by all replicas; lowered automatically on 429.').optional(),
  retryAfterMax: describe(positiveDurationSchema, 'Cap on a target\'s Retry-After (429 and 503).').default('10m'),
  retryOn: describe(
    z.array(retryOnItemSchema).max(32),
    'Failures that are retried: status codes, "5xx", Network, Timeout. Any other non-2xx goes to the fallback stream at once.',
  ).default([408, 425, 429, '5xx', 'Network', 'Timeout']),
  circuitBreaker: circuitBreakerSchema.prefault({}),
  orderingKey: describe(
    fieldPointerSchema,
    'Events with the same value at this JSON Pointer are delivered one at a time, in stream order.',
  ).optional(),
}), 'How deliveries are retried, paced and stopped when the target fails.');

/** The delivery-time objective; parsed alone by the leader, which measures it. */
export const slaSchema = describe(
  z.strictObject({
    deliverWithin: describe(positiveDurationSchema, 'Events should be delivered within this time of being published (stream time to the ack after delivery); a parked event misses it.'),
    window: describe(positiveDurationSchema, 'The sliding window over which the share of late events is measured.').default('5m'),
    maxLatePercent: describe(z.int().min(0).max(100), 'Degraded=True (SlaMissed) while more than this percentage of the events finished in the window were late, or an event still waiting in the source is older than deliverWithin.').default(1),
  }),
  'Delivery-time objective: measured per event (ferry_sla_events_total, ferry_end_to_end_latency_seconds), reported in status.sla and as Degraded (SlaMissed).',
);

const RUNTIME_REPLICAS_MESSAGE = 'must be an integer from 1 to 1000, or All';

/**
 * How many operator replicas run this Integration's pipeline. zod checks each branch itself; the
 * CRD needs CEL because an int-or-string field takes no other constraints in a structural schema.
 */
const runtimeReplicasSchema = annotate(
  describe(
    z.union([z.int().min(1, RUNTIME_REPLICAS_MESSAGE).max(1_000, RUNTIME_REPLICAS_MESSAGE), z.enum(['All'])], { error: RUNTIME_REPLICAS_MESSAGE }),
    'Operator replicas that run this pipeline: a number (capped at the live replicas, at least 1), or All for an Integration with more load than one replica carries. Default: the operator flag --pipeline-replicas.',
  ),
  {
    'x-kubernetes-int-or-string': true,
    // Bounds the string side for the CEL cost estimate.
    maxLength: 8,
    'x-kubernetes-validations': [{ rule: "type(self) == int ? (self >= 1 && self <= 1000) : self == 'All'", message: RUNTIME_REPLICAS_MESSAGE }],
  },
);

/** Where the pipeline runs; read by every replica before compiling (see {@link pipelineReplicasOf}). */
export const integrationRuntimeSchema = describe(
  z.strictObject({ replicas: runtimeReplicasSchema.optional() }),
  'Where the pipeline runs across operator replicas (sharding).',
);

/**
 * `spec.runtime.replicas` of a raw spec as the runtime uses it (`all` or a count); undefined when
 * absent or invalid (then the operator default applies: an invalid value is the controller's to
 * report, and must not stop the pipeline from running somewhere).
 */
export function pipelineReplicasOf(spec: unknown): number | 'all' | undefined {
  const runtime = typeof spec === 'object' && spec !== null ? (spec as { runtime?: unknown }).runtime : undefined;
  if (runtime === undefined) return undefined;
  const parsed = integrationRuntimeSchema.safeParse(runtime);
  if (!parsed.success || parsed.data.replicas === undefined) return undefined;
  return parsed.data.replicas === 'All' ? 'all' : parsed.data.replicas;
}

/** The desired state of an Integration. */
export const integrationSpecSchema = describe(z.strictObject({
  source: sourceSchema,
  schema: schemaSourceSchema.optional(),
  transform: describe(
    transformSchema,
    'Event → request body: exactly one of mapping (output field → JSON Pointer) or jsonata. Absent: the event payload is sent as is.',
  ).optional(),
  target: targetSchema,
  delivery: deliverySchema.prefault({}),
  fallback: fallbackSchema.prefault({}),
  sla: slaSchema.optional(),
  runtime: integrationRuntimeSchema.optional(),
  suspend: describe(z.boolean(), 'Stop consuming; events wait in the stream.').default(false),
}), 'Desired state: the source of events, how they are validated and transformed, and how they are delivered.');

/** A validated Integration spec with every default applied. */
export type IntegrationSpec = z.output<typeof integrationSpecSchema>;
/** An Integration spec as written in a manifest (defaults may be missing). */
export type IntegrationSpecInput = z.input<typeof integrationSpecSchema>;

const lastErrorSchema = describe(
  z.object({
    time: describe(timeSchema, 'When it happened.'),
    reason: describe(z.string().max(64), 'Why: invalid, transform, exhausted, rejected, contract, or the failure that is being retried.'),
    httpStatus: describe(z.int().min(100).max(599), 'HTTP status of the response, when there was one.').optional(),
    message: describe(z.string().max(1_024), 'The error, as parked with the event (Ferry-Error).'),
  }),
  'The most recent failure.',
);

/** What the controller reports about an Integration. */
export const integrationStatusSchema = describe(z.object({
  observedGeneration: observedGenerationSchema.optional(),
  conditions: conditionsSchema.optional(),
  circuit: describe(
    z.object({
      state: describe(z.enum(['Closed', 'Open', 'HalfOpen']), 'Closed (delivering), Open (paused until openUntil) or HalfOpen (one probe in flight).'),
      since: describe(timeSchema, 'When the circuit entered this state.').optional(),
      openUntil: describe(timeSchema, 'When an open circuit lets a probe through.').optional(),
      consecutiveFailures: describe(countSchema, 'Failures counted toward opening the circuit.').optional(),
    }),
    'The circuit breaker that pauses consumption while the target keeps failing.',
  ).optional(),
  throttle: describe(
    z.object({
      limitedUntil: describe(timeSchema, 'Attempts are held until this time, as the target asked (429 or 503 with Retry-After).').optional(),
      perSecond: describe(z.number().min(0).max(100_000), 'The request rate now shared by all replicas (lowered on 429, recovering after).').optional(),
    }),
    'Throttling after the target asked to slow down.',
  ).optional(),
  sla: describe(
    z.object({
      window: describe(z.string().max(64), 'The window the figures cover (spec.sla.window).').optional(),
      total: describe(countSchema, 'Events whose outcome became final in the window (delivered or parked).').optional(),
      late: describe(countSchema, 'Of those, events delivered later than spec.sla.deliverWithin, or parked.').optional(),
      oldestPendingTime: describe(timeSchema, 'When the oldest event still waiting in the source stream was published, while it is older than deliverWithin.').optional(),
    }),
    'Delivery-time objective figures, summed over all replicas (present when spec.sla is set).',
  ).optional(),
  stats: describe(
    z.object({
      delivered: describe(countSchema, 'Events delivered (a 2xx that satisfied responseSchema).').optional(),
      retried: describe(countSchema, 'Attempts that failed and were retried.').optional(),
      fallback: describe(countSchema, 'Events parked in the fallback stream.').optional(),
      invalid: describe(countSchema, 'Events parked because they broke the schema or could not be decoded.').optional(),
      lastDeliveredTime: describe(timeSchema, 'When the last event was delivered.').optional(),
      lastError: lastErrorSchema.optional(),
    }),
    'Event counts, summed over all replicas.',
  ).optional(),
  fallbackPending: describe(countSchema, 'Messages waiting in the fallback stream.').optional(),
  lastRedrive: describe(
    z.object({
      request: describe(z.string().max(256), 'The ferry.dev/redrive annotation value this redrive answers.'),
      result: describe(
        z.enum(['Running', 'Succeeded', 'Partial', 'Failed', 'Invalid']),
        'Running; Succeeded (every selected message delivered); Partial (some failed again and stay parked); Failed (stopped early, e.g. the circuit opened; the rest stay parked); Invalid (the request annotations are malformed, see message).',
      ),
      startedAt: describe(timeSchema, 'When the redrive started.').optional(),
      completedAt: describe(timeSchema, 'When it finished.').optional(),
      selected: describe(countSchema, 'Fallback messages the request selected.').optional(),
      delivered: describe(countSchema, 'Selected messages delivered; they left the fallback stream.').optional(),
      failedAgain: describe(countSchema, 'Selected messages that failed again; they stay parked with the new error.').optional(),
      message: describe(z.string().max(1_024), 'What happened, or why the request is invalid.').optional(),
    }),
    'The last redrive of the fallback stream (requested with the ferry.dev/redrive annotation or ferry fallback redrive).',
  ).optional(),
}), 'Observed state, written by the operator: conditions, circuit, throttle and event counts.');
export type IntegrationStatus = z.output<typeof integrationStatusSchema>;

/**
 * A whole Integration object. Its CRD schema is generated from this; `status` defaults to
 * `{observedGeneration: -1}` so that kstatus sees a new object as in progress, not current.
 */
export const integrationResourceSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(INTEGRATION.kind),
  metadata: objectMetaSchema,
  spec: integrationSpecSchema,
  status: integrationStatusSchema.default(INITIAL_STATUS),
});
/** An Integration manifest as written by users (status and defaults optional). */
export type IntegrationResource = z.input<typeof integrationResourceSchema>;
