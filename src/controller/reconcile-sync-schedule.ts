/**
 * Reconciles one SyncSchedule (leader only), level-based, like the Integration reconciler: the
 * spec is checked (parse, cron and time zone, schema, transform, Secrets), the KV bucket that
 * keeps its watermark, locks and change hashes is ensured, and status reports the next run.
 *
 * Guarantees: `nextScheduleTime` is computed in the spec's time zone; status is written only when
 * it changed; configuration problems are terminal (`Stalled=True`) until the spec or a referenced
 * object changes; transient failures are thrown so the work queue retries with backoff. On delete
 * the sync state bucket is kept (it is small, and a re-created SyncSchedule resumes from its
 * watermark); the finalizer is released.
 */
import { checkSyncScheduleSpec, FINALIZER, formatKubeTime, Reason, SYNC_SCHEDULE, type ReferenceLookup } from '../api/index.ts';
import type { EventRecorder, ObjectClient, Reconciler, Store } from '../kube/index.ts';
import { syncStateBucketName, type JetStreamResources } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { refOf, resourceType, type FerryObject } from './ferry-object.ts';
import { ReconcileSteps } from './reconcile-steps.ts';
import { statusFor } from './status.ts';

export const syncScheduleType = resourceType(SYNC_SCHEDULE.plural);

/** Upper bound between reconciles, so `nextScheduleTime` never goes stale for long. */
export const SYNC_RESYNC_MAX_MS = 5 * 60_000;

export interface SyncScheduleReconcilerDeps {
  readonly syncSchedules: Store<FerryObject>;
  readonly references: ReferenceLookup;
  readonly client: ObjectClient;
  readonly jetstream: JetStreamResources;
  readonly events: EventRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
}

export function syncScheduleReconciler(deps: SyncScheduleReconcilerDeps): Reconciler {
  const log = deps.logger.child({ controller: 'syncschedule' });
  const steps = new ReconcileSteps(syncScheduleType, { client: deps.client, events: deps.events, log });

  return async (key, signal) => {
    const obj = deps.syncSchedules.get(key);
    if (!obj?.metadata?.name) return {};
    const meta = obj.metadata;
    if (meta.deletionTimestamp) {
      if (meta.finalizers?.includes(FINALIZER)) await steps.releaseFinalizer(obj, signal);
      return {};
    }
    if (await steps.ensureFinalizer(obj, signal)) return {};

    const ref = refOf(syncScheduleType, obj);
    const generation = meta.generation ?? 0;
    const now = deps.clock.now();
    const fields = { namespace: ref.namespace, syncSchedule: ref.name, generation };
    const check = checkSyncScheduleSpec(ref.namespace, obj.spec, deps.references, new Date(now));
    if (!check.ok) {
      await steps.reportStalled(obj, check, generation, now, fields, signal);
      return {};
    }
    const config = check.config;
    try {
      await deps.jetstream.ensureKvBucket({ name: syncStateBucketName(ref), history: 1 });
    } catch (err) {
      await steps.reportProgressing(obj, Reason.ProvisioningFailed, err, generation, now, fields, signal);
      throw err;
    }

    const next = config.suspend ? undefined : config.nextRun;
    const outcome = config.suspend
      ? { kind: 'ready' as const, reason: Reason.Suspended, message: 'suspended: no runs are scheduled until spec.suspend is false' }
      : {
          kind: 'ready' as const,
          reason: Reason.Scheduled,
          message: next ? `next run at ${formatKubeTime(next)} (${config.schedule}, ${config.timeZone})` : `schedule ${config.schedule} has no future run`,
        };
    const wasReady = steps.wasReady(obj);
    // null removes a stale nextScheduleTime in the merge patch when suspended.
    await steps.writeStatus(obj, statusFor(outcome, steps.statusOf(obj), generation, now, { nextScheduleTime: next ? formatKubeTime(next) : null }), signal);
    steps.announceReady(obj, wasReady, outcome.reason, outcome.message, fields, 'sync schedule');
    const untilNext = next ? next.getTime() - now : SYNC_RESYNC_MAX_MS;
    return { requeueAfter: Math.min(Math.max(untilNext, 1_000), SYNC_RESYNC_MAX_MS) };
  };
}
