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
import { FINALIZER, INTEGRATION, Reason } from '../api/index.ts';
import {
  isNotFound,
  type EventRecorder,
  type ObjectClient,
  type ReconcileResult,
  type Reconciler,
  type Store,
} from '../kube/index.ts';
import {
  fallbackStreamName,
  fallbackSubject,
  integrationConsumerName,
  StreamNotFoundError,
  type JetStreamResources,
} from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { checkIntegrationSpec, type ReferenceLookup } from './check-spec.ts';
import { refOf, resourceType, statusUnchanged, type FerryObject, type FerryObjectStatus } from './ferry-object.ts';
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

  async function writeStatus(obj: FerryObject, next: FerryObjectStatus, signal: AbortSignal): Promise<void> {
    if (statusUnchanged(obj.status, next)) return;
    await deps.client.patchStatus(refOf(integrationType, obj), next, { signal });
  }

  async function finalize(obj: FerryObject, signal: AbortSignal): Promise<ReconcileResult> {
    const ref = refOf(integrationType, obj);
    const stream = rawSourceStream(obj);
    if (stream !== undefined) {
      const removed = await deps.jetstream.deleteConsumer(stream, integrationConsumerName(ref));
      log.info({ namespace: ref.namespace, integration: ref.name, consumer: integrationConsumerName(ref), removed }, 'integration deleted: consumer removed, fallback stream kept');
    }
    const finalizers = (obj.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER);
    try {
      await deps.client.patchMerge(ref, { metadata: { finalizers } }, { resourceVersion: obj.metadata?.resourceVersion, signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return {};
  }

  return async (key, signal) => {
    const obj = deps.integrations.get(key);
    if (!obj?.metadata?.name) return {};
    const meta = obj.metadata;
    if (meta.deletionTimestamp) {
      return meta.finalizers?.includes(FINALIZER) ? await finalize(obj, signal) : {};
    }
    const ref = refOf(integrationType, obj);
    if (!meta.finalizers?.includes(FINALIZER)) {
      // The patch's watch event brings the object back with the finalizer; status follows then.
      await deps.client.patchMerge(ref, { metadata: { finalizers: [...(meta.finalizers ?? []), FINALIZER] } }, { resourceVersion: meta.resourceVersion, signal });
      return {};
    }

    const generation = meta.generation ?? 0;
    const now = deps.clock.now();
    const fields = { namespace: ref.namespace, integration: ref.name, generation };
    const check = checkIntegrationSpec(ref.namespace, obj.spec, deps.references);
    if (!check.ok) {
      const wasStalledSo = obj.status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True' && c.message === check.message);
      await writeStatus(obj, statusFor({ kind: 'stalled', reason: check.reason, message: check.message }, obj.status, generation, now), signal);
      if (!wasStalledSo) {
        log.warn({ ...fields, reason: check.reason, field: check.field }, check.message);
        void deps.events.record(obj, { type: 'Warning', reason: check.reason, note: check.message, action: 'Reconcile' });
      }
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
        await writeStatus(obj, statusFor({ kind: 'stalled', reason: Reason.StreamNotFound, message }, obj.status, generation, now), signal);
        log.warn({ ...fields, reason: Reason.StreamNotFound }, message);
        // Streams are not Kubernetes objects: no watch event will say it appeared, so look again.
        return { requeueAfter: STREAM_MISSING_RETRY_MS };
      }
      const message = err instanceof Error ? err.message : 'provisioning failed';
      await writeStatus(obj, statusFor({ kind: 'progressing', reason: Reason.ProvisioningFailed, message }, obj.status, generation, now), signal).catch(
        (writeErr: unknown) => {
          log.warn({ ...fields, err: writeErr }, 'could not write status');
        },
      );
      throw err;
    }

    const becameReady = !obj.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    const view = deps.runtimeView(key);
    // Until the poller has read the runtime's state (a new leader), keep what status says; a
    // fresh object starts with an empty fallback stream.
    const extra = { ...(obj.status?.fallbackPending === undefined ? { fallbackPending: 0 } : {}), ...(view ? runtimeStatusFields(view, now) : {}) };
    await writeStatus(obj, statusFor(outcome, obj.status, generation, now, extra, view ? degradation(view, now) : undefined), signal);
    if (becameReady) {
      log.info({ ...fields }, 'integration ready');
      void deps.events.record(obj, { type: 'Normal', reason: outcome.reason, note: outcome.message, action: 'Reconcile' });
    }
    return { requeueAfter: INTEGRATION_RESYNC_MS };
  };
}
