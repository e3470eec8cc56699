/**
 * Reconciles one Integration (leader only), level-based: read the object from the cache, decide
 * whether its generation can run, provision its JetStream resources, write status.
 *
 * Expected flow: finalizer present → spec checked (parse, schema, transform, Secrets) →
 * source stream, durable consumer and fallback stream ensured → `Ready=True`.
 * Guarantees: status is written only when it changed; `observedGeneration` is written on every
 * outcome; a stalled generation leaves the consumer (and the runtime's last good pipeline) in
 * place; on delete the consumer is removed and the fallback stream — with its parked events —
 * is kept, then the finalizer is released.
 * Errors: a transient failure (NATS, API server) is thrown after status says `Reconciling`, so
 * the work queue retries with backoff; configuration problems never throw — they are terminal
 * until the spec or a referenced object changes, which requeues the key.
 */
import { compileIntegrationSpec, FINALIZER, INTEGRATION, JsonSchemaCache, Reason, subjectCaptured, type ReferenceLookup, type ResolvedIntegrationConfig, type SchemaCompiler, type SpecCheck } from '../api/index.ts';
import type { EventRecorder, ObjectClient, ReconcileResult, Reconciler, Store } from '../kube/index.ts';
import {
  fallbackStreamName,
  integrationConsumerName,
  integrationStateKeyPrefix,
  lastGoodKey,
  ConsumerLimitError,
  StreamNotFoundError,
  FerryNatsError,
  type AttemptLedger,
  type JetStreamResources,
  type LastGoodGeneration,
  type SharedKv,
} from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { CheckCache } from './check-cache.ts';
import { integrationConsumerSpec, integrationFallbackSpec } from './integration-resources.ts';
import { refOf, resourceType, type FerryObject } from './ferry-object.ts';
import { ReconcileSteps } from './reconcile-steps.ts';
import { degradation, msUntilTimedChange, runtimeStatusFields, type RuntimeView } from './runtime-view.ts';
import { statusFor, type Outcome } from './status.ts';

export const integrationType = resourceType(INTEGRATION.plural);

/**
 * How long after a successful reconcile the controller looks again when nothing asks it to: the
 * safety net for drift JetStream did not announce (an advisory lost while disconnected, a
 * consumer edited by hand). Deletions and source stream changes arrive as advisories, runtime
 * changes as views, time-based status changes at their own time (msUntilTimedChange).
 */
export const INTEGRATION_RESYNC_MS = 10 * 60_000;

/** When to look again: at the next time-based status change, at the latest after the resync period. */
export function recheckAfter(view: RuntimeView | undefined, now: number): number {
  const timed = msUntilTimedChange(view, now);
  // A second late rather than early: at the exact instant the window has not closed yet.
  return timed === undefined ? INTEGRATION_RESYNC_MS : Math.min(INTEGRATION_RESYNC_MS, timed + 1_000);
}

/** Retry delay while a source stream does not exist yet. */
export const STREAM_MISSING_RETRY_MS = 15_000;

export interface IntegrationReconcilerDeps {
  readonly integrations: Store<FerryObject>;
  readonly references: ReferenceLookup;
  readonly client: ObjectClient;
  readonly jetstream: JetStreamResources;
  /** The shared runtime bucket: last good generations are written here, a deleted object's keys purged. */
  readonly state: SharedKv;
  readonly ledger: AttemptLedger;
  readonly events: EventRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  /** What the runtime replicas report (counters, circuit, throttle, fallback size); leader's poller. */
  runtimeView(key: string): RuntimeView | undefined;
  /** Told when the reconcile created the Integration's fallback stream (empty, nothing to count). */
  fallbackCreated?(key: string): void;
  /**
   * Whether this operator serves webhook ingress (--webhook-address). Every replica runs with the
   * same flags; without it an Integration with spec.source.webhook is Stalled, never a Ready
   * object that nothing listens for.
   */
  readonly webhookIngress: boolean;
  /** Compiled schemas shared by content (with the runtime in the same process); default: the reconciler's own. */
  readonly schemas?: JsonSchemaCache;
}

/**
 * Why an Integration's webhook cannot receive, if it cannot: no ingress on this operator, or a
 * subject the stream does not capture (JetStream would answer the publish with no responders).
 */
function webhookProblem(config: ResolvedIntegrationConfig, streamSubjects: readonly string[], ingress: boolean): { reason: Reason; message: string; field: string } | undefined {
  const webhook = config.source.webhook;
  if (webhook === undefined) return undefined;
  if (!ingress) {
    return {
      reason: Reason.WebhookIngressDisabled,
      field: 'spec.source.webhook',
      message: 'spec.source.webhook: this operator serves no webhook ingress, so nothing receives these requests; start the operator with --webhook-address HOST:PORT',
    };
  }
  if (!subjectCaptured(streamSubjects, webhook.subject)) {
    return {
      reason: Reason.WebhookSubjectNotCaptured,
      field: 'spec.source.webhook.subject',
      message: `spec.source.webhook.subject: ${JSON.stringify(webhook.subject)} is not captured by stream ${config.source.stream} (subjects: ${streamSubjects.join(', ')}); add it to the stream's subjects or change the webhook subject`,
    };
  }
  return undefined;
}

/** A NATS failure that passes on its own (a node down, an election, no quorum, a timeout). */
function isUnavailable(err: unknown): err is FerryNatsError {
  return err instanceof FerryNatsError && err.retryable;
}

/** The stream an object's (possibly invalid) spec names, for cleanup of what was provisioned. */
function rawSourceStream(obj: FerryObject): string | undefined {
  const spec = obj.spec as { source?: { stream?: unknown } } | undefined;
  return typeof spec?.source?.stream === 'string' ? spec.source.stream : undefined;
}

/**
 * The runtime's own compile function, reduced to what the controller keeps: the resolved config
 * (compiled validators and credentials stay with the runtime, not in the check cache).
 */
function checkIntegration(namespace: string, spec: unknown, references: ReferenceLookup, compileSchema: SchemaCompiler): SpecCheck<CheckedIntegration> {
  const r = compileIntegrationSpec(namespace, spec, references, compileSchema);
  return r.ok ? { ok: true, config: { config: r.config.config, configMapTexts: r.config.configMapTexts } } : r;
}

interface CheckedIntegration {
  readonly config: ResolvedIntegrationConfig;
  /** `name/key` → text of every ConfigMap key the generation read. */
  readonly configMapTexts: Readonly<Record<string, string>>;
}

/** The last good generation as replicas need it: the spec and the ConfigMap values it read. */
function lastGoodOf(obj: FerryObject, generation: number, configMapTexts: Readonly<Record<string, string>>): LastGoodGeneration {
  const configMaps: Record<string, Record<string, string>> = {};
  for (const [ref, text] of Object.entries(configMapTexts)) {
    const slash = ref.indexOf('/');
    (configMaps[ref.slice(0, slash)] ??= {})[ref.slice(slash + 1)] = text;
  }
  return { uid: obj.metadata?.uid ?? '', generation, spec: obj.spec, configMaps };
}

export function integrationReconciler(deps: IntegrationReconcilerDeps): Reconciler {
  const log = deps.logger.child({ controller: 'integration' });
  const steps = new ReconcileSteps(integrationType, { client: deps.client, events: deps.events, log });
  const checks = new CheckCache<CheckedIntegration>();
  const compileSchema = (deps.schemas ?? new JsonSchemaCache()).compile;
  /** What this leader last stored as each Integration's last good generation. */
  const storedLastGood = new Map<string, string>();

  /**
   * Stores the generation as the one replicas fall back to while a later one is Stalled (also
   * after a restart). Best effort: a failed write is retried on the next reconcile.
   */
  async function storeLastGood(key: string, obj: FerryObject, generation: number, checked: CheckedIntegration): Promise<void> {
    const signature = `${obj.metadata?.uid ?? ''}|${generation}|${JSON.stringify(checked.configMapTexts)}`;
    if (storedLastGood.get(key) === signature) return;
    const ref = refOf(integrationType, obj);
    try {
      await deps.state.put(lastGoodKey(ref), lastGoodOf(obj, generation, checked.configMapTexts));
      storedLastGood.set(key, signature);
    } catch (err) {
      log.warn({ namespace: ref.namespace, integration: ref.name, err }, 'could not store the last good generation; retrying on the next reconcile');
    }
  }

  async function finalize(obj: FerryObject, signal: AbortSignal): Promise<ReconcileResult> {
    const ref = refOf(integrationType, obj);
    const stream = rawSourceStream(obj);
    if (stream !== undefined) {
      const removed = await deps.jetstream.deleteConsumer(stream, integrationConsumerName(ref));
      log.info({ namespace: ref.namespace, integration: ref.name, consumer: integrationConsumerName(ref), removed }, 'integration deleted: consumer removed, fallback stream kept');
    }
    // Shared counters, circuit, throttle, last good generation and attempt records belong to
    // this object: a re-created Integration with the same name must not inherit them.
    await deps.state.purge(`${integrationStateKeyPrefix(ref)}.>`);
    await deps.ledger.purge(ref);
    log.debug({ namespace: ref.namespace, integration: ref.name }, 'removed the shared state and attempt records of a deleted Integration');
    await steps.releaseFinalizer(obj, signal);
    return {};
  }

  return async (key, signal) => {
    const cached = deps.integrations.get(key);
    if (!cached?.metadata?.name) {
      checks.forget(key);
      return {};
    }
    if (cached.metadata.deletionTimestamp) {
      checks.forget(key);
      return cached.metadata.finalizers?.includes(FINALIZER) ? await finalize(cached, signal) : {};
    }
    const obj = await steps.withFinalizer(cached, signal);
    const meta = obj.metadata ?? cached.metadata;

    const ref = refOf(integrationType, obj);
    const generation = meta.generation ?? 0;
    const now = deps.clock.now();
    const fields = { namespace: ref.namespace, integration: ref.name, generation };
    const check = checks.get(key, obj, deps.references, () => checkIntegration(ref.namespace, obj.spec, deps.references, compileSchema));
    const view = deps.runtimeView(key);
    if (!check.ok) {
      // The last good generation may still be delivering: its runtime state stays visible.
      await steps.reportStalled(obj, check, generation, now, fields, signal, view ? runtimeStatusFields(view, now) : {}, view ? degradation(view, now, obj.spec) : undefined);
      // Terminal until the spec or a referenced object changes; both requeue the key themselves.
      return {};
    }
    const config = check.config.config;

    let outcome: Outcome;
    let sourceWarning: string | undefined;
    let hookProblem: ReturnType<typeof webhookProblem>;
    try {
      const source = await deps.jetstream.ensureSourceStream({ name: config.source.stream, subjects: config.source.subjects, create: config.source.create });
      if (source.replicas < 2 && (await deps.jetstream.replication()).clustered) {
        // The source belongs to the user and is never changed; a node loss there loses events.
        sourceWarning = `source stream ${config.source.stream} has 1 replica on a NATS cluster: losing the node that stores it loses its events (Ferry never changes a source stream; give it num_replicas 3)`;
      }
      // Independent of each other (both need only the source stream to exist): one round trip of
      // waiting instead of two, on the path every new object takes.
      const [, fallbackStream] = await Promise.all([deps.jetstream.ensureConsumer(integrationConsumerSpec(ref, config, generation)), deps.jetstream.ensureFallbackStream(integrationFallbackSpec(ref, config))]);
      if (fallbackStream === 'created') deps.fallbackCreated?.(key);
      const fallback = fallbackStreamName(ref);
      hookProblem = webhookProblem(config, source.subjects, deps.webhookIngress);
      const warning = sourceWarning === undefined ? '' : `; warning: ${sourceWarning}`;
      const hook = config.source.webhook === undefined ? '' : `; webhook POST /hooks/${ref.namespace}/${ref.name} → ${config.source.webhook.subject}`;
      outcome = config.suspend
        ? { kind: 'ready', reason: Reason.Suspended, message: `suspended: the pipeline does not consume until spec.suspend is false${warning}` }
        : {
            kind: 'ready',
            reason: Reason.Delivering,
            message: `consuming ${config.source.stream} (${config.source.subjects.join(', ')}) through consumer ${integrationConsumerName(ref)}; fallback stream ${fallback}${hook}${warning}`,
          };
    } catch (err) {
      if (err instanceof StreamNotFoundError) {
        const message = `spec.source.stream: stream ${JSON.stringify(err.stream)} not found (create it, or set spec.source.create: true)`;
        await steps.reportStalled(obj, { reason: Reason.StreamNotFound, message, field: 'spec.source.stream' }, generation, now, fields, signal);
        // Its creation comes as an advisory; one can be lost (a reconnect), so look again too.
        return { requeueAfter: STREAM_MISSING_RETRY_MS };
      }
      if (err instanceof ConsumerLimitError) {
        const message = `spec.source.stream: stream ${JSON.stringify(err.stream)} refused this Integration's consumer: its max_consumers is reached (nats-server 2.15 allows a stream 1,000 unless the stream sets more, and every Integration is one consumer); raise the stream's max_consumers or spread Integrations over more streams`;
        await steps.reportStalled(obj, { reason: Reason.ConsumerLimitReached, message, field: 'spec.source.stream' }, generation, now, fields, signal);
        // A stream's limits are not Kubernetes objects either: look again.
        return { requeueAfter: STREAM_MISSING_RETRY_MS };
      }
      if (isUnavailable(err) && steps.wasReady(obj) && steps.statusOf(obj)?.observedGeneration === generation) {
        // Part of Ferry's JetStream state cannot be served (no quorum, an election, a node gone):
        // the pipelines keep delivering what needs nothing from it, so the object stays Ready and
        // says what is missing. The work queue retries with backoff; Ready on its own once back.
        await steps.reportUnavailable(obj, Reason.JetStreamUnavailable, `JetStream state unavailable: ${err.message}; delivery continues, events that must be parked wait in their source stream`, generation, now, fields, signal, view ? runtimeStatusFields(view, now) : {});
        throw err;
      }
      await steps.reportProgressing(obj, Reason.ProvisioningFailed, err, generation, now, fields, signal);
      throw err;
    }

    // Best effort (it never throws) and independent of the status write: both go out together.
    const lastGoodStored = storeLastGood(key, obj, generation, check.config);
    if (hookProblem) {
      // The pipeline is provisioned (events published by other means still flow), but the object
      // must not claim to receive webhooks. A change to the source stream's subjects comes as an
      // advisory; look again periodically too.
      await Promise.all([
        lastGoodStored,
        steps.reportStalled(obj, hookProblem, generation, now, fields, signal, view ? runtimeStatusFields(view, now) : {}, view ? degradation(view, now, obj.spec) : undefined),
      ]);
      return { requeueAfter: recheckAfter(view, now) };
    }
    const current = steps.statusOf(obj);
    const wasReady = steps.wasReady(obj);
    // Until the poller has read the runtime's state (a new leader), keep what status says; a
    // fresh object starts with an empty fallback stream.
    // status.sla goes with spec.sla (null removes it in the merge patch).
    const extra = {
      ...(current?.fallbackPending === undefined ? { fallbackPending: 0 } : {}),
      ...(config.sla === undefined && current?.sla !== undefined ? { sla: null } : {}),
      ...(view ? runtimeStatusFields(view, now) : {}),
    };
    await Promise.all([lastGoodStored, steps.writeStatus(obj, statusFor(outcome, current, generation, now, extra, view ? degradation(view, now, obj.spec) : undefined), signal)]);
    steps.announceReady(obj, wasReady, outcome.reason, outcome.message, fields, 'integration');
    if (sourceWarning !== undefined && !(current?.conditions?.some((c) => c.type === 'Ready' && c.message.includes(sourceWarning)) ?? false)) {
      log.warn({ ...fields, stream: config.source.stream }, sourceWarning);
      void deps.events.record(obj, { type: 'Warning', reason: Reason.SourceNotReplicated, note: sourceWarning, action: 'Reconcile' });
    }
    return { requeueAfter: recheckAfter(view, now) };
  };
}
