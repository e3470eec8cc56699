export { connectNats, type ConnectOptions, type NatsConnection } from './connection.ts';
export {
  FerryNatsError,
  JetStreamRequestError,
  NatsUnavailableError,
  StreamNotFoundError,
  translateNatsError,
} from './errors.ts';
export {
  fallbackStreamName,
  fallbackSubject,
  integrationConsumerName,
  integrationStateKeyPrefix,
  INTEGRATION_STATE_BUCKET,
  MEMBERS_BUCKET,
  syncStateBucketName,
  type ObjectRef,
} from './names.ts';
export {
  JetStreamResources,
  type ConsumerSummary,
  type DurableConsumerSpec,
  type FallbackStreamSpec,
  type KvBucketSpec,
  type SourceStreamSpec,
} from './provision.ts';
