export { describeSecurity, credsProblem, displayServer, natsConnectionOptions, nkeySeedProblem, NO_SECURITY, SecretValue, type NatsAuth, type NatsSecurity, type NatsTls } from './auth.ts';
export { connectNats, FIRST_CONNECT_MAX_DELAY_MS, connectNatsOnce, type ConnectOnceOptions, type ConnectOptions, type NatsConnection } from './connection.ts';
export {
  FerryNatsError,
  JetStreamRequestError,
  KvWatchStalledError,
  NatsAuthError,
  NatsUnavailableError,
  ConsumerLimitError,
  StreamNotFoundError,
  isDuplicateInProcess,
  translateNatsError,
} from './errors.ts';
export {
  fallbackStreamName,
  fallbackSubject,
  integrationConsumerName,
  integrationStateKeyPrefix,
  ATTEMPTS_BUCKET,
  ATTEMPTS_TTL_MS,
  INTEGRATION_STATE_BUCKET,
  MEMBERS_BUCKET,
  syncStateBucketName,
  SYNC_RUNS_BUCKET,
  syncRunsKeyPrefix,
  syncFallbackStreamName,
  syncFallbackSubject,
  parseFallbackStreamName,
  parseIntegrationConsumerName,
  type FallbackStreamRef,
  type ObjectRef,
} from './names.ts';
export { detectReplication, type Replication } from './replication.ts';
export {
  JetStreamResources,
  type ResourcesOptions,
  type ConsumerSummary,
  type DurableConsumerSpec,
  type FallbackStreamSpec,
  type KvBucketSpec,
  type SourceStreamSpec,
} from './provision.ts';
export { ADVISORY_SUBJECTS, JetStreamAdvisories, parseAdvisorySubject, type JetStreamChange } from './jetstream-advisories.ts';
export { consumeMessages, readConsumer, type InboundMessage, type PullReaderOptions } from './pull-reader.ts';
export { FallbackPublisher, type FallbackMessage } from './fallback-publisher.ts';
export { FallbackStore, type FallbackStreamInfo, type ParkedMessage, type SequenceRange } from './fallback-store.ts';
export { fallbackHeaders, fallbackMsgId, type FallbackFacts, type FallbackReason } from './fallback-message.ts';
export { ConsumerControl } from './consumer-control.ts';
export { SharedKv, type Versioned } from './shared-kv.ts';
export {
  addStats,
  applyStatsFlush,
  circuitKey,
  EMPTY_STATS,
  lastGoodKey,
  redriveKey,
  statsKey,
  throttleKey,
  type LastGoodGeneration,
  type RedriveResult,
  type SharedRedrive,
  type SharedCircuit,
  type SharedLastError,
  type SharedStats,
  type SharedThrottle,
  type StatsFlush,
} from './integration-state.ts';
export { AttemptLedger, NO_ATTEMPTS, type AttemptRecord } from './attempt-ledger.ts';
