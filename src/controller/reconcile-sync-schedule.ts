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
import { FINALIZER, formatKubeTime, Reason, SYNC_SCHEDULE } from '../api/index.ts';
import { isNotFound, type EventRecorder, type ObjectClient, type Reconciler, type Store } from '../kube/index.ts';
import { syncStateBucketName, type JetStreamResources } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { checkSyncScheduleSpec, type ReferenceLookup } from './check-spec.ts';
import { refOf, resourceType, statusUnchanged, type FerryObject, type FerryObjectStatus } from './ferry-object.ts';
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

  async function writeStatus(obj: FerryObject, next: FerryObjectStatus, signal: AbortSignal): Promise<void> {
    if (statusUnchanged(obj.status, next)) return;
    await deps.client.patchStatus(refOf(syncScheduleType, obj), next, { signal });
  }

  return async (key, signal) => {
    const obj = deps.syncSchedules.get(key);
    if (!obj?.metadata?.name) return {};
    const meta = obj.metadata;
    const ref = refOf(syncScheduleType, obj);
    if (meta.deletionTimestamp) {
      if (!meta.finalizers?.includes(FINALIZER)) return {};
      try {
        await deps.client.patchMerge(ref, { metadata: { finalizers: meta.finalizers.filter((f) => f !== FINALIZER) } }, { resourceVersion: meta.resourceVersion, signal });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      return {};
    }
    if (!meta.finalizers?.includes(FINALIZER)) {
      await deps.client.patchMerge(ref, { metadata: { finalizers: [...(meta.finalizers ?? []), FINALIZER] } }, { resourceVersion: meta.resourceVersion, signal });
      return {};
    }

    const generation = meta.generation ?? 0;
    const now = deps.clock.now();
    const fields = { namespace: ref.namespace, syncSchedule: ref.name, generation };
    const check = checkSyncScheduleSpec(ref.namespace, obj.spec, deps.references, new Date(now));
    if (!check.ok) {
      const wasStalledSo = obj.status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True' && c.message === check.message);
      await writeStatus(obj, statusFor({ kind: 'stalled', reason: check.reason, message: check.message }, obj.status, generation, now), signal);
      if (!wasStalledSo) {
        log.warn({ ...fields, reason: check.reason, field: check.field }, check.message);
        void deps.events.record(obj, { type: 'Warning', reason: check.reason, note: check.message, action: 'Reconcile' });
      }
      return {};
    }
    const config = check.config;
    try {
      await deps.jetstream.ensureKvBucket({ name: syncStateBucketName(ref), history: 1 });
    } catch (err) {
      const message = err instanceof Error ? err.message : 'provisioning failed';
      await writeStatus(obj, statusFor({ kind: 'progressing', reason: Reason.ProvisioningFailed, message }, obj.status, generation, now), signal).catch(
        (writeErr: unknown) => {
          log.warn({ ...fields, err: writeErr }, 'could not write status');
        },
      );
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
    const becameReady = !obj.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    // null removes a stale nextScheduleTime in the merge patch when suspended.
    await writeStatus(obj, statusFor(outcome, obj.status, generation, now, { nextScheduleTime: next ? formatKubeTime(next) : null }), signal);
    if (becameReady) {
      log.info(fields, 'sync schedule ready');
      void deps.events.record(obj, { type: 'Normal', reason: outcome.reason, note: outcome.message, action: 'Reconcile' });
    }
    const untilNext = next ? next.getTime() - now : SYNC_RESYNC_MAX_MS;
    return { requeueAfter: Math.min(Math.max(untilNext, 1_000), SYNC_RESYNC_MAX_MS) };
  };
}
