/**
 * What the Integration pipeline benchmark (bench/pipeline.bench.ts) and its child processes
 * (pipeline-sink.ts, pipeline-floor-process.ts) must agree on: the clock every process stamps
 * times with, the events, the schema and the two transforms, the idempotency keys, and the
 * durable consumer configuration Ferry's controller would give an Integration. Pure.
 */
import { AckPolicy, DeliverPolicy, ReplayPolicy, type ConsumerConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';

/**
 * Milliseconds on CLOCK_MONOTONIC (`process.hrtime`), which every process on the machine shares:
 * a publish time taken in the bench process and a receive time taken in the sink process can be
 * subtracted. (`performance.now()` is relative to each process's own start.) V8's `.cpuprofile`
 * timestamps are on the same clock, in microseconds, so a profile can be cut to a time window.
 */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Event keys are `<prefix>:<index>`: the prefix names one run (or its warm-up), so one sink
 * serves every run and reports each apart. The bench sets `Nats-Msg-Id` to it; Ferry's default
 * idempotency key is that id scoped by Integration (`<namespace>/<name>/<id>`, see
 * {@link eventKeyOf}), the floors send it as it is.
 */
export function eventKey(prefix: string, index: number): string {
  return `${prefix}:${index}`;
}

/** The event key in an Idempotency-Key header: what follows Ferry's `<namespace>/<name>/` scope. */
export function eventKeyOf(header: string): string {
  return header.slice(header.lastIndexOf('/') + 1);
}

export function prefixOf(key: string): string {
  const at = key.lastIndexOf(':');
  return at < 0 ? '' : key.slice(0, at);
}

/** A closed-deal event of realistic size (~330 bytes of JSON): nested object, array, formats. */
export function benchEvent(id: string, index: number): Record<string, unknown> {
  return {
    id,
    amount: 1 + (index % 10_000) / 100,
    currency: 'EUR',
    customer: { id: `cus-${index % 997}`, email: `buyer${index % 997}@example.com`, country: 'DE' },
    items: [
      { sku: 'sku-1001', quantity: 1, price: 9.5 },
      { sku: 'sku-2002', quantity: 2, price: 3.25 },
    ],
    createdAt: '2026-01-02T03:04:05Z',
  };
}

/** The Integration's JSON Schema (2020-12): what a real contract for the event above checks. */
export const EVENT_SCHEMA = {
  type: 'object',
  required: ['id', 'amount', 'currency', 'customer', 'createdAt'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128 },
    amount: { type: 'number', minimum: 0 },
    currency: { type: 'string', enum: ['EUR', 'USD', 'GBP'] },
    customer: {
      type: 'object',
      required: ['id', 'email'],
      properties: { id: { type: 'string' }, email: { type: 'string', format: 'email' }, country: { type: 'string', minLength: 2, maxLength: 2 } },
    },
    items: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        required: ['sku', 'quantity'],
        properties: { sku: { type: 'string' }, quantity: { type: 'integer', minimum: 1 }, price: { type: 'number' } },
      },
    },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** `spec.transform.mapping`: six fields picked by JSON Pointer. */
export const MAPPING = {
  externalId: '/id',
  total: '/amount',
  currency: '/currency',
  customer: '/customer/id',
  email: '/customer/email',
  createdAt: '/createdAt',
} as const;

/** `spec.transform.jsonata`: the same six fields, so (b) differs from (a) only in the engine. */
export const JSONATA = '{ "externalId": id, "total": amount, "currency": currency, "customer": customer.id, "email": customer.email, "createdAt": createdAt }';

/** The body the mapping produces for an event: what the raw-POST floor sends. */
export function mappedBody(event: Record<string, unknown>): string {
  const customer = event.customer as Record<string, unknown>;
  return JSON.stringify({
    externalId: event.id,
    total: event.amount,
    currency: event.currency,
    customer: customer.id,
    email: customer.email,
    createdAt: event.createdAt,
  });
}

/**
 * The durable pull consumer Ferry's controller provisions for an Integration
 * (src/controller/reconcile-integration.ts): the floors read through one configured the same.
 */
export function ferryLikeConsumer(name: string, subject: string, concurrency: number, timeoutMs: number, maxAttempts = 5): Partial<ConsumerConfig> {
  return {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    filter_subject: subject,
    ack_wait: nanos(timeoutMs + 30_000),
    max_deliver: maxAttempts + 20,
    max_ack_pending: Math.max(concurrency * 8, 64),
  };
}

/** The pull options of Ferry's reader (src/nats/pull-reader.ts), given the Integration's concurrency. */
export function ferryLikeConsumeOptions(concurrency: number): { max_messages: number; idle_heartbeat: number; expires: number } {
  return { max_messages: concurrency, idle_heartbeat: 5_000, expires: 30_000 };
}

/** Connections per origin of Ferry's HttpDeliverer (its default, src/delivery/http-deliverer.ts). */
export const FERRY_CONNECTIONS_PER_ORIGIN = 32;

/** Parses `FERRY_BENCH_*` integers: positive, or the fallback when unset. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** Parses a comma-separated list of positive integers, e.g. FERRY_BENCH_CONCURRENCY=16,64. */
export function intListEnv(name: string, fallback: readonly number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...fallback];
  const values = raw.split(',').map((s) => Number(s.trim()));
  if (values.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`${name} must be a comma-separated list of positive integers, got ${JSON.stringify(raw)}`);
  return values;
}
