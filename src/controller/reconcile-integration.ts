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
import { FINALIZER, INTEGRATION, Reason, type ResolvedIntegrationConfig } from '../api/index.ts';
import type { EventRecorder, ObjectClient, ReconcileResult, Reconciler, Store } from '../kube/index.ts';
import {
  fallbackStreamName,
  fallbackSubject,
  integrationConsumerName,
  StreamNotFoundError,
  type JetStreamResources,
} from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { CheckCache } from './check-cache.ts';
import { checkIntegrationSpec, type ReferenceLookup } from './check-spec.ts';
import { refOf, resourceType, type FerryObject } from './ferry-object.ts';
import { ReconcileSteps } from './reconcile-steps.ts';
import { degradation, runtimeStatusFields, type RuntimeView } from './runtime-view.ts';
import { statusFor, type Outcome } from './status.ts';

export const integrationType = resourceType(INTEGRATION.plural);

/** How long after a successful reconcile the controller looks again (safety net, fallback count). */
export const INTEGRATION_RESYNC_MS = 60_000;
/** Retry delay while a source stream does not exist yet. */
export const STREAM_MISSING_RETRY_MS = 15_000;
/** Fallback publishes carry `Nats-Msg-Id: <stream>:<seq>`; a re-publish within this window is dropped. */
export const FALLBACK_DUPLICATE_WINDOW_MS = 60 * 60 * 1000;

export interface IntegrationReconcilerDeps {
  readonly integrations: Store<FerryObject>;
  readonly references: ReferenceLookup;
  readonly client: ObjectClient;
  readonly jetstream: JetStreamResources;
  readonly events: EventRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  /** What the runtime replicas report (counters, circuit, throttle, fallback size); leader's poller. */
  runtimeView(key: string): RuntimeView | undefined;
}

/** The stream an object's (possibly invalid) spec names, for cleanup of what was provisioned. */
function rawSourceStream(obj: FerryObject): string | undefined {
  const spec = obj.spec as { source?: { stream?: unknown } } | undefined;
  return typeof spec?.source?.stream === 'string' ? spec.source.stream : undefined;
}

export function integrationReconciler(deps: IntegrationReconcilerDeps): Reconciler {
  const log = deps.logger.child({ controller: 'integration' });
  const steps = new ReconcileSteps(integrationType, { client: deps.client, events: deps.events, log });
  const checks = new CheckCache<ResolvedIntegrationConfig>();

  async function finalize(obj: FerryObject, signal: AbortSignal): Promise<ReconcileResult> {
    const ref = refOf(integrationType, obj);
    const stream = rawSourceStream(obj);
    if (stream !== undefined) {
      const removed = await deps.jetstream.deleteConsumer(stream, integrationConsumerName(ref));
      log.info({ namespace: ref.namespace, integration: ref.name, consumer: integrationConsumerName(ref), removed }, 'integration deleted: consumer removed, fallback stream kept');
    }
    await steps.releaseFinalizer(obj, signal);
    return {};
  }

  return async (key, signal) => {
    const obj = deps.integrations.get(key);
    if (!obj?.metadata?.name) {
      checks.forget(key);
      return {};
    }
    const meta = obj.metadata;
    if (meta.deletionTimestamp) {
      checks.forget(key);
      return meta.finalizers?.includes(FINALIZER) ? await finalize(obj, signal) : {};
    }
    if (await steps.ensureFinalizer(obj, signal)) return {};

    const ref = refOf(integrationType, obj);
    const generation = meta.generation ?? 0;
    const now = deps.clock.now();
    const fields = { namespace: ref.namespace, integration: ref.name, generation };
    const check = checks.get(key, obj, deps.references, () => checkIntegrationSpec(ref.namespace, obj.spec, deps.references));
    if (!check.ok) {
      await steps.reportStalled(obj, check, generation, now, fields, signal);
      // Terminal until the spec or a referenced object changes; both requeue the key themselves.
      return {};
    }
    const config = check.config;

    let outcome: Outcome;
    try {
      await deps.jetstream.ensureSourceStream({ name: config.source.stream, subjects: config.source.subjects, create: config.source.create });
      await deps.jetstream.ensureConsumer({
        stream: config.source.stream,
        name: integrationConsumerName(ref),
        filterSubjects: config.source.subjects,
        // Long attempts call working(); ack_wait only has to outlast one attempt's timeout.
        ackWaitMs: config.target.timeoutMs + 30_000,
        // A safety net only: the runtime parks an event in the fallback stream at maxAttempts,
        // and needs headroom for redeliveries after crashes or failed fallback publishes.
        maxDeliver: config.delivery.maxAttempts + 20,
        maxAckPending: Math.max(config.delivery.concurrency * 8, 64),
        metadata: { 'ferry.dev/integration': `${ref.namespace}/${ref.name}`, 'ferry.dev/generation': String(generation) },
      });
      const fallback = fallbackStreamName(ref);
      await deps.jetstream.ensureFallbackStream({
        name: fallback,
        subject: fallbackSubject(ref),
        maxAgeMs: config.fallback.retentionMs,
        duplicateWindowMs: FALLBACK_DUPLICATE_WINDOW_MS,
      });
      outcome = config.suspend
        ? { kind: 'ready', reason: Reason.Suspended, message: 'suspended: the pipeline does not consume until spec.suspend is false' }
        : {
            kind: 'ready',
            reason: Reason.Delivering,
            message: `consuming ${config.source.stream} (${config.source.subjects.join(', ')}) through consumer ${integrationConsumerName(ref)}; fallback stream ${fallback}`,
          };
    } catch (err) {
      if (err instanceof StreamNotFoundError) {
        const message = `spec.source.stream: stream ${JSON.stringify(err.stream)} not found (create it, or set spec.source.create: true)`;
        await steps.reportStalled(obj, { reason: Reason.StreamNotFound, message, field: 'spec.source.stream' }, generation, now, fields, signal);
        // Streams are not Kubernetes objects: no watch event will say it appeared, so look again.
        return { requeueAfter: STREAM_MISSING_RETRY_MS };
      }
      await steps.reportProgressing(obj, Reason.ProvisioningFailed, err, generation, now, fields, signal);
      throw err;
    }

    const current = steps.statusOf(obj);
    const wasReady = steps.wasReady(obj);
    const view = deps.runtimeView(key);
    // Until the poller has read the runtime's state (a new leader), keep what status says; a
    // fresh object starts with an empty fallback stream.
    const extra = { ...(current?.fallbackPending === undefined ? { fallbackPending: 0 } : {}), ...(view ? runtimeStatusFields(view, now) : {}) };
    await steps.writeStatus(obj, statusFor(outcome, current, generation, now, extra, view ? degradation(view, now) : undefined), signal);
    steps.announceReady(obj, wasReady, outcome.reason, outcome.message, fields, 'integration');
    return { requeueAfter: INTEGRATION_RESYNC_MS };
  };
}
