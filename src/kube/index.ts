/**
 * src/kube — Kubernetes machinery that knows no Ferry kind: watch → store → work queue →
 * controller; Lease leader election; object and status writes; Events; a manager that starts and
 * stops runnables in order. The only public surface of this folder.
 */
export {
  KubeError,
  KubeApiError,
  NotFoundError,
  AlreadyExistsError,
  ConflictError,
  InvalidError,
  GoneError,
  BadRequestError,
  UnauthorizedError,
  ForbiddenError,
  UnavailableError,
  UnexpectedStatusError,
  MalformedResponseError,
  KubeConfigError,
  TerminalError,
  errorFromStatus,
  isNotFound,
  isConflict,
  isGone,
  isRetryable,
  type KubeStatus,
  type RequestInfo,
} from './errors.ts';
export {
  objectKey,
  parseKey,
  resourcePath,
  apiVersionOf,
  microTime,
  type KubeObject,
  type ObjectMeta,
  type ResourceType,
  type ObjectRef,
} from './object.ts';
export { KubeConfig } from './client-node.ts';
export { Backoff, backoffDelay, type BackoffOptions } from './backoff.ts';
export { StoreWriter, type Store, type StoreOptions, type IndexFunc } from './store.ts';
export { Watcher, type WatcherOptions, type WatcherBackoffOptions, type WatchHandler, type WatchEventType } from './watcher.ts';
export { WatcherGroup, mergeStores, type WatchSource } from './watcher-group.ts';
export { planRestart, classifyWatchError, classifyCleanClose, type RestartReason, type WatchEnd, type ServedState } from './watch-policy.ts';
export {
  WorkQueue,
  ExponentialRateLimiter,
  type WorkQueueOptions,
  type RateLimiter,
  type ExponentialRateLimiterOptions,
} from './work-queue.ts';
export {
  Controller,
  decide,
  defaultErrorPolicy,
  type ControllerOptions,
  type Reconciler,
  type ReconcileResult,
  type ErrorAction,
  type ErrorPolicy,
  type QueueDecision,
  type ReconcileResultLabel,
} from './controller.ts';
export { LeaderElector, type LeaderElectorOptions, type LeaderCallbacks, type LeaderElectionEnd } from './leader-election.ts';
export {
  KubeLeaseClient,
  observe,
  decideLease,
  releaseRecord,
  renewDeadlinePassed,
  type LeaseClient,
  type LeaseRecord,
  type LeaseSnapshot,
  type LeaseDecision,
  type Observation,
} from './lease.ts';
export { ObjectClient, type ObjectClientOptions, type WriteOptions, type JsonObject } from './object-client.ts';
export { EventRecorder, type EventRecorderOptions, type EventSpec, type ObjectReference } from './events.ts';
export {
  Manager,
  type ManagerOptions,
  type ManagerExit,
  type Runnable,
  type RunnableGroup,
  type LeaderElection,
} from './manager.ts';
