/**
 * Names of the JetStream resources that belong to a Ferry object. Pure, and shared by the
 * controller (which provisions them) and the runtime (which binds to them), so the two can never
 * disagree.
 *
 * Kubernetes namespaces are DNS labels (no `.` or `_`) and names DNS subdomains (no `_`), while
 * NATS forbids `.` in stream, consumer and bucket names. Mapping `.` to `_` and joining with `_`
 * is therefore injective: `ns_a.b` and `ns.a_b` cannot both come from valid objects.
 */

function part(value: string): string {
  return value.replaceAll('.', '_');
}

export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

/** The durable pull consumer that every replica binds for an Integration. */
export function integrationConsumerName(ref: ObjectRef): string {
  return `ferry_${part(ref.namespace)}_${part(ref.name)}`;
}

/**
 * The object named by `<prefix><namespace>_<name>` (the inverse of {@link part} on both): a
 * namespace has neither `_` nor `.`, so it ends at the first `_`; a name has no `_`, so every `_`
 * in it was a `.`. Undefined when `value` has another prefix or either part is empty.
 */
function refAfter(prefix: string, value: string): ObjectRef | undefined {
  if (!value.startsWith(prefix)) return undefined;
  const rest = value.slice(prefix.length);
  const cut = rest.indexOf('_');
  if (cut <= 0 || cut === rest.length - 1) return undefined;
  return { namespace: rest.slice(0, cut), name: rest.slice(cut + 1).replaceAll('_', '.') };
}

/** The Integration a durable consumer name belongs to, or undefined for any other name: the inverse of {@link integrationConsumerName}. */
export function parseIntegrationConsumerName(consumer: string): ObjectRef | undefined {
  return refAfter('ferry_', consumer);
}

/** The stream that keeps an Integration's undeliverable events. */
export function fallbackStreamName(ref: ObjectRef): string {
  return `FERRY_FALLBACK_${part(ref.namespace)}_${part(ref.name)}`;
}

/** The single subject of an Integration's fallback stream. */
export function fallbackSubject(ref: ObjectRef): string {
  return `ferry.fallback.${part(ref.namespace)}.${part(ref.name)}`;
}

/** Shared runtime state of all Integrations (circuit, rate budget, counters), keyed per object. */
export const INTEGRATION_STATE_BUCKET = 'ferry_integrations';
/**
 * Per-event delivery records of events that needed more than one try (attempts made, first
 * attempt, outcomes whose ack was not confirmed): JetStream's delivery count also counts
 * redeliveries that were no attempt (shutdowns, swaps, lost acks), so attempts are kept here.
 */
export const ATTEMPTS_BUCKET = 'ferry_attempts';
/** How long an attempt record outlives its last write; far above any sensible maxElapsed. */
export const ATTEMPTS_TTL_MS = 30 * 24 * 60 * 60 * 1000;
/** Replica heartbeats, each key expiring unless renewed. */
export const MEMBERS_BUCKET = 'ferry_members';

/** Key prefix of one Integration inside INTEGRATION_STATE_BUCKET. */
export function integrationStateKeyPrefix(ref: ObjectRef): string {
  return `${part(ref.namespace)}.${part(ref.name)}`;
}

/** Watermarks, locks, change hashes and failed-key index of one SyncSchedule. */
export function syncStateBucketName(ref: ObjectRef): string {
  return `ferry_sync_${part(ref.namespace)}_${part(ref.name)}`;
}

/**
 * Run locks and run reports of every SyncSchedule, keyed `<namespace>.<name>.lock` and
 * `<namespace>.<name>.report`: small, and in one bucket so one watch serves every replica's
 * scheduler and the leader's status writer.
 */
export const SYNC_RUNS_BUCKET = 'ferry_syncs';

/** Key prefix of one SyncSchedule inside SYNC_RUNS_BUCKET. */
export function syncRunsKeyPrefix(ref: ObjectRef): string {
  return `${part(ref.namespace)}.${part(ref.name)}`;
}

/** The stream that keeps a SyncSchedule's records that failed `failedRecords.maxAttempts` runs. */
export function syncFallbackStreamName(ref: ObjectRef): string {
  return `FERRY_SYNC_FALLBACK_${part(ref.namespace)}_${part(ref.name)}`;
}

/** The single subject of a SyncSchedule's fallback stream (its own token: never an Integration's). */
export function syncFallbackSubject(ref: ObjectRef): string {
  return `ferry.syncfallback.${part(ref.namespace)}.${part(ref.name)}`;
}

/** Which object a fallback stream belongs to. */
export interface FallbackStreamRef extends ObjectRef {
  readonly kind: 'Integration' | 'SyncSchedule';
}

const FALLBACK_PREFIXES = [
  ['FERRY_SYNC_FALLBACK_', 'SyncSchedule'],
  ['FERRY_FALLBACK_', 'Integration'],
] as const;

/**
 * The object a fallback stream name belongs to, or undefined for any other stream. The inverse
 * of {@link fallbackStreamName} / {@link syncFallbackStreamName}.
 */
export function parseFallbackStreamName(stream: string): FallbackStreamRef | undefined {
  for (const [prefix, kind] of FALLBACK_PREFIXES) {
    if (!stream.startsWith(prefix)) continue;
    const ref = refAfter(prefix, stream);
    return ref && { kind, ...ref };
  }
  return undefined;
}
