export { refOf, resourceType, statusUnchanged, type FerryObject, type FerryObjectStatus } from './ferry-object.ts';
export { conditionsFor, statusFor, type Outcome } from './status.ts';
export { integrationReconciler, integrationType, INTEGRATION_RESYNC_MS, type IntegrationReconcilerDeps } from './reconcile-integration.ts';
export { syncScheduleReconciler, syncScheduleType, type SyncScheduleReconcilerDeps } from './reconcile-sync-schedule.ts';
export { referencedObjects, shouldEnqueue } from './watch-predicates.ts';
export { CONTRACT_DRIFT_WINDOW_MS, degradation, msUntilTimedChange, runtimeStatusFields, RuntimeViewPoller, type RuntimeView, type RuntimeViewPollerDeps } from './runtime-view.ts';
export { JetStreamDisabledError, SHARED_BUCKETS, SharedBuckets, type SharedBucketsDeps } from './shared-buckets.ts';
export { SyncReportView, type SyncReportViewDeps } from './sync-report-view.ts';
export { FALLBACK_DUPLICATE_WINDOW_MS, integrationConsumerSpec, integrationFallbackSpec, integrationsConcerned } from './integration-resources.ts';
