/**
 * src/runtime — Integration pipelines, each on the replicas assigned to it (assignment.ts):
 * consume → validate → transform → deliver → ack / nak(delay) / park in the fallback stream and
 * term.
 */
export { Admission } from './admission.ts';
export { authProvider, compileIntegration, type CompiledIntegration, type CompileContext } from './compile-integration.ts';
export { applyMapping } from './transform.ts';
export { decide, type AttemptFacts, type Decision, type FallbackReason, type RetryPolicy } from './decide.ts';
export { FERRY_IDEMPOTENCY_KEY_HEADER, idempotencyKey, type IdempotencyKey, type IdempotencyKeySource, type KeyedEvent } from './idempotency.ts';
export { LeaseKeeper } from './lease-keeper.ts';
export { assignReplicas, runnerCount, type PipelineReplicas } from './assignment.ts';
export { HEARTBEAT_MS, memberName, Membership, type LiveMembers } from './membership.ts';
export { RuntimeMetrics, transformPoolMetrics, type EventOutcome } from './metrics.ts';
export { IntegrationPipeline, type PipelineDeps } from './pipeline.ts';
export { previewEvent, type EventPreview, type PreviewFailure, type SampleEvent } from './preview.ts';
export { PipelineConfigError } from './pipeline-errors.ts';
export { TransformPool, type JsonataEvaluator, type JsonataTask, type TransformPoolOptions } from './transform-pool.ts';
export { RuntimeSupervisor, type DataObject, type IntegrationObject, type PipelineLike, type SupervisorDeps } from './supervisor.ts';
export { RedriveMetrics, type RedriveOutcome } from './redrive-metrics.ts';
export { RedriveRunner, type RedriveRunnerDeps } from './redrive-runner.ts';
