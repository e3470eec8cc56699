/**
 * Status conditions in the shape of metav1.Condition, with the kstatus types that Flux, Helm
 * `--wait`, `kubectl wait` and Argo CD read: `Ready`, `Reconciling`, `Stalled`, `Degraded`.
 *
 * kstatus reads `Reconciling=True` as in progress, `Stalled=True` as failed and `Ready=True` as
 * current, and ignores a condition whose `observedGeneration` is behind `metadata.generation`:
 * so every write stamps the generation it describes.
 */
import { z } from 'zod';
import { annotate, describe } from './crd-meta.ts';
import { ConditionInvalidError } from './errors.ts';
import { formatKubeTime, timeSchema } from './time.ts';

/** The four condition types Ferry sets on both kinds. */
export const ConditionType = {
  /** The resource does its job (delivering / last run succeeded). Always present. */
  Ready: 'Ready',
  /** The controller is converging on a new generation. */
  Reconciling: 'Reconciling',
  /** A terminal configuration error: nothing changes until the spec or a Secret does. */
  Stalled: 'Stalled',
  /** Working, but worse than promised (circuit open, fallback growing, SLA missed, drift). */
  Degraded: 'Degraded',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

export const ConditionStatus = { True: 'True', False: 'False', Unknown: 'Unknown' } as const;
export type ConditionStatus = (typeof ConditionStatus)[keyof typeof ConditionStatus];

/** Condition reasons (CamelCase, as metav1.Condition requires). */
export const Reason = {
  // Ready / Reconciling
  Delivering: 'Delivering',
  Synced: 'Synced',
  Scheduled: 'Scheduled',
  Suspended: 'Suspended',
  Progressing: 'Progressing',
  Reconciled: 'Reconciled',
  // Stalled: configuration that cannot work until someone edits it.
  SpecInvalid: 'SpecInvalid',
  SecretNotFound: 'SecretNotFound',
  ConfigMapNotFound: 'ConfigMapNotFound',
  SchemaInvalid: 'SchemaInvalid',
  TransformInvalid: 'TransformInvalid',
  StreamNotFound: 'StreamNotFound',
  /** The source stream refused the Integration's durable consumer: its max_consumers is reached. */
  ConsumerLimitReached: 'ConsumerLimitReached',
  /** spec.source.webhook on an operator started without --webhook-address: nothing would listen. */
  WebhookIngressDisabled: 'WebhookIngressDisabled',
  /** spec.source.webhook.subject is not captured by the source stream: publishes would find no stream. */
  WebhookSubjectNotCaptured: 'WebhookSubjectNotCaptured',
  // Degraded
  Healthy: 'Healthy',
  CircuitOpen: 'CircuitOpen',
  TargetUnauthorized: 'TargetUnauthorized',
  FallbackUnavailable: 'FallbackUnavailable',
  JetStreamUnavailable: 'JetStreamUnavailable',
  SourceNotReplicated: 'SourceNotReplicated',
  Throttled: 'Throttled',
  FallbackGrowing: 'FallbackGrowing',
  SlaMissed: 'SlaMissed',
  ContractDrift: 'ContractDrift',
  ProvisioningFailed: 'ProvisioningFailed',
  RunFailed: 'RunFailed',
  RunPartial: 'RunPartial',
  DeleteThresholdExceeded: 'DeleteThresholdExceeded',
  MismatchesFound: 'MismatchesFound',
  Mismatch: 'Mismatch',
  // Events at the end of a redrive of the fallback stream.
  RedriveSucceeded: 'RedriveSucceeded',
  RedrivePartial: 'RedrivePartial',
  RedriveFailed: 'RedriveFailed',
  RedriveInvalid: 'RedriveInvalid',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

// The patterns and limits of metav1.Condition, so a status write is never refused for them.
const TYPE_PATTERN = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/;
const REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const MESSAGE_MAX_LENGTH = 32_768;

/** One condition, as metav1.Condition. */
export const conditionSchema = z.object({
  type: describe(z.string().min(1).max(316).regex(TYPE_PATTERN), 'Condition type: Ready, Reconciling, Stalled or Degraded.'),
  status: describe(z.enum(['True', 'False', 'Unknown']), 'True, False or Unknown.'),
  observedGeneration: describe(z.int().min(0), 'The metadata.generation this condition describes.').optional(),
  lastTransitionTime: describe(timeSchema, 'When status last changed.'),
  reason: describe(z.string().min(1).max(1024).regex(REASON_PATTERN), 'Why, in one CamelCase word, such as CircuitOpen or SecretNotFound.'),
  message: describe(z.string().max(MESSAGE_MAX_LENGTH), 'What happened, for people: the field and the error when Stalled.'),
});
export type Condition = z.output<typeof conditionSchema>;

/** `status.conditions`: a list-map keyed by `type` (server-side apply merges by type). */
export const conditionsSchema = annotate(z.array(conditionSchema).max(16), {
  description: 'kstatus conditions (Ready, Reconciling, Stalled, Degraded), each stamped with the generation it describes.',
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

/** What a caller decides about a condition; the rest is bookkeeping done by {@link setCondition}. */
export type ConditionUpdate = Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;

function truncate(message: string): string {
  if (message.length <= MESSAGE_MAX_LENGTH) return message;
  // Cut on code points, not UTF-16 units, so no half surrogate pair is left at the end.
  return Array.from(message).slice(0, MESSAGE_MAX_LENGTH - 1).join('') + '…';
}

/**
 * Returns a new list with `update` applied: the condition of that type is replaced (or appended),
 * stamped with `observedGeneration`. `lastTransitionTime` becomes `now` only when the status
 * changes (or the condition is new); a new reason or message alone keeps the old time. Other
 * conditions are copied unchanged, in their order. Messages longer than the API allows are cut.
 *
 * @throws ConditionInvalidError when `type` or `reason` break metav1.Condition's patterns.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  observedGeneration: number,
  now: Date | number,
): Condition[] {
  if (!TYPE_PATTERN.test(update.type)) throw new ConditionInvalidError('type', update.type);
  if (!REASON_PATTERN.test(update.reason)) throw new ConditionInvalidError('reason', update.reason);
  const list = conditions ?? [];
  const previous = list.find((c) => c.type === update.type);
  const next: Condition = {
    type: update.type,
    status: update.status,
    observedGeneration,
    lastTransitionTime: previous && previous.status === update.status ? previous.lastTransitionTime : formatKubeTime(now),
    reason: update.reason,
    message: truncate(update.message),
  };
  return previous ? list.map((c) => (c === previous ? next : { ...c })) : [...list.map((c) => ({ ...c })), next];
}

/** The condition of `type`, if present. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True when the condition of `type` is present with status `True`. */
export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/**
 * True when the condition describes `generation`, as `kubectl wait` requires (a condition
 * without `observedGeneration` counts as current, as kstatus treats it).
 */
export function isConditionCurrent(condition: Condition, generation: number): boolean {
  return condition.observedGeneration === undefined || condition.observedGeneration >= generation;
}

/** Returns a new list without the condition of `type`. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
