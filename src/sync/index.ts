/**
 * src/sync — SyncSchedule runs on every replica: schedule, take the run lock, paginate the
 * source, detect changes by content hash, write the target, reconcile, report to the controller
 * through the shared runs bucket.
 */
export { FerrySyncError, PaginationLoopError, RunBudgetExhaustedError, RunCancelledError, RunLockLostError, SourceRequestError, SourceResponseError, TargetUnavailableError } from './errors.ts';
export { HttpCaller, HttpCallFailed, SYNC_BACKOFF, SYNC_MAX_ATTEMPTS, type HttpCallerOptions } from './http-call.ts';
export { nextLink } from './link-header.ts';
export { SyncMetrics, type RecordOutcome } from './metrics.ts';
export { canonicalJson, contentHash, keyToken, tokenKey } from './records.ts';
export { ReportWriter, type ReportEvent } from './report.ts';
export { isHeld, isTaken, RunLock, type Acquire, type LockRecord, type Trigger } from './run-lock.ts';
export { DEFAULT_STARTING_DEADLINE_MS, planSchedule, type Plan, type PlanInput } from './schedule-plan.ts';
export { DEFAULT_LOCK_TTL_MS, RUN_NOW_ANNOTATION, SyncScheduler, type SyncScheduleObject, type SyncSchedulerDeps } from './scheduler.ts';
export { readPages, type CollectionSpec, type Page, type PaginationConfig } from './source-reader.ts';
export { SyncState, type FailedRecord, type WatermarkRecord } from './state.ts';
export { SyncRunner, type RecordTransformer, type RunDeps } from './sync-run.ts';
export { TargetWriter, writeKey, type TargetConfig, type WriteItem, type WriteResult } from './target-writer.ts';
export { WatermarkTracker, type Observed } from './watermark.ts';
