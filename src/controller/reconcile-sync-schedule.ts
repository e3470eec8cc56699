/**
 * Reconciles one SyncSchedule (leader only), level-based, like the Integration reconciler: the
 * spec is checked (parse, cron and time zone, schema, transform, Secrets), the KV bucket that
 * keeps its watermark, change hashes and failed-key index and its fallback stream are ensured,
 * and status reports the next run and what the runs (on any replica) reported: last run,
 * history, schedule times, failed records, fallback pending, Degraded, and each run's Events.
 *
 * Guarantees: `nextScheduleTime` is computed in the spec's time zone; status is written only when
 * it changed; configuration problems are terminal (`Stalled=True`) until the spec or a referenced
 * object changes; transient failures are thrown so the work queue retries with backoff. On delete
 * the sync state bucket is kept (it is small, and a re-created SyncSchedule resumes from its
 * watermark); the finalizer is released.
 */
import { checkSyncScheduleSpec, FINALIZER, formatKubeTime, Reason, SYNC_SCHEDULE, syncRunSchema, type ReferenceLookup, type SyncReport, type SyncRun } from '../api/index.ts';
import type { EventRecorder, ObjectClient, Reconciler, Store } from '../kube/index.ts';
import { syncFallbackStreamName, type JetStreamResources } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { EscalationLimiter } from './escalation.ts';
import { refOf, resourceType, type FerryObject } from './ferry-object.ts';
import { ReconcileSteps } from './reconcile-steps.ts';
import { statusFor, type DegradedUpdate } from './status.ts';

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
  /** The latest run report of a SyncSchedule (see SyncReportView). */
  report?(namespace: string, name: string, uid: string | undefined): SyncReport | undefined;
}

/**
 * A run as a merge patch: every field the new run lacks is null, so no field of the previous
 * run (its message, its mismatches) survives the patch into the new one.
 */
function runPatch(run: SyncRun): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(syncRunSchema.shape)) out[k] = (run as Record<string, unknown>)[k] ?? null;
  return out;
}

function degradedFrom(report: SyncReport | undefined): DegradedUpdate | undefined {
  if (!report) return undefined;
  const last = report.lastRun;
  if (last?.result === 'Failed') return { status: 'True', reason: Reason.RunFailed, message: `run ${last.id} failed: ${last.message ?? 'no detail'}` };
  if (report.degraded) return { status: 'True', reason: report.degraded.reason, message: report.degraded.message };
  return { status: 'False', reason: Reason.Healthy, message: last ? `last run ${last.id}: ${last.result}` : 'no run yet' };
}

export function syncScheduleReconciler(deps: SyncScheduleReconcilerDeps): Reconciler {
  const log = deps.logger.child({ controller: 'syncschedule' });
  /** Per SyncSchedule uid, the run whose Events were emitted (each run's Events once per leader). */
  const announced = new Map<string, string>();
  const mismatchWarnings = new EscalationLimiter();
  const steps = new ReconcileSteps(syncScheduleType, { client: deps.client, events: deps.events, log });

  return async (key, signal) => {
    const cached = deps.syncSchedules.get(key);
    if (!cached?.metadata?.name) return {};
    if (cached.metadata.deletionTimestamp) {
      if (cached.metadata.finalizers?.includes(FINALIZER)) await steps.releaseFinalizer(cached, signal);
      return {};
    }
    const obj = await steps.withFinalizer(cached, signal);
    const meta = obj.metadata ?? cached.metadata;

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
      await deps.jetstream.ensureSyncScheduleStores(ref, config.fallback.retentionMs);
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
    const report = deps.report?.(ref.namespace, ref.name, meta.uid);
    const fallbackPending = await deps.jetstream.streamMessages(syncFallbackStreamName(ref)).catch(() => undefined);
    const fromRuns = report
      ? {
          ...(report.lastRun ? { lastRun: runPatch(report.lastRun) } : {}),
          history: report.history,
          ...(report.lastScheduleTime ? { lastScheduleTime: report.lastScheduleTime } : {}),
          ...(report.lastSuccessfulTime ? { lastSuccessfulTime: report.lastSuccessfulTime } : {}),
          failedRecords: report.failedRecords,
        }
      : {};
    // null removes a stale nextScheduleTime in the merge patch when suspended.
    const extra = { nextScheduleTime: next ? formatKubeTime(next) : null, ...fromRuns, ...(fallbackPending === undefined ? {} : { fallbackPending }) };
    await steps.writeStatus(obj, statusFor(outcome, steps.statusOf(obj), generation, now, extra, degradedFrom(report)), signal);
    if (report?.eventsRunId !== undefined && meta.uid !== undefined && announced.get(meta.uid) !== report.eventsRunId) {
      announced.set(meta.uid, report.eventsRunId);
      for (const e of report.events) {
        // A schedule that finds mismatches on every run warns once per interval, not once per run.
        if (e.reason === Reason.MismatchesFound && !mismatchWarnings.allow(`${meta.uid}/${e.reason}`, now)) continue;
        void deps.events.record(obj, { type: e.type, reason: e.reason, note: e.message, action: 'Sync' });
      }
    }
    steps.announceReady(obj, wasReady, outcome.reason, outcome.message, fields, 'sync schedule');
    const untilNext = next ? next.getTime() - now : SYNC_RESYNC_MAX_MS;
    return { requeueAfter: Math.min(Math.max(untilNext, 1_000), SYNC_RESYNC_MAX_MS) };
  };
}
