/**
 * Leader-only: ensures the KV buckets every replica's runtime shares (circuit, throttle and
 * counters; membership; attempts), with Ferry's replicas, at the start of every leader term —
 * creating them, or scaling up ones an older version created with fewer replicas.
 *
 * Guarantees: a NATS that is briefly unavailable (a restart, an election, no quorum) is waited
 * out with a capped backoff, loudly (an error line per failure, with what is missing); it never
 * ends the process. A NATS server without JetStream at all is a configuration error that retrying
 * cannot fix: that ends the runnable (and the process, exit 1) with a message that says so.
 */
import type { Runnable } from '../kube/index.ts';
import {
  ATTEMPTS_BUCKET,
  ATTEMPTS_TTL_MS,
  FerryNatsError,
  INTEGRATION_STATE_BUCKET,
  MEMBERS_BUCKET,
  SYNC_RUNS_BUCKET,
  type JetStreamResources,
  type KvBucketSpec,
} from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';

/** The buckets, in the order they are ensured. */
export const SHARED_BUCKETS: readonly KvBucketSpec[] = [
  { name: INTEGRATION_STATE_BUCKET, history: 1 },
  { name: MEMBERS_BUCKET, history: 1, ttlMs: 15_000 },
  { name: ATTEMPTS_BUCKET, history: 1, ttlMs: ATTEMPTS_TTL_MS },
  { name: SYNC_RUNS_BUCKET, history: 1 },
];

/** The server Ferry is connected to has JetStream switched off: nothing Ferry does can work. */
export class JetStreamDisabledError extends Error {
  override readonly name = 'JetStreamDisabledError';
  readonly code = 'FERRY_JETSTREAM_DISABLED';
  readonly retryable = false;
  constructor() {
    super('the NATS server has JetStream disabled: start it with JetStream (nats-server -js, or jetstream.enabled in the NATS Helm chart)');
  }
}

export interface SharedBucketsDeps {
  readonly jetstream: JetStreamResources;
  /** Whether the connected server announces JetStream (its INFO); undefined before connecting. */
  serverHasJetStream(): boolean | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
}

const RETRY_MAX_MS = 30_000;

export class SharedBuckets implements Runnable {
  readonly name = 'shared KV buckets';
  private readonly deps: SharedBucketsDeps;
  private readonly log: Logger;
  private ensured = false;

  constructor(deps: SharedBucketsDeps) {
    this.deps = deps;
    this.log = deps.logger.child({ component: 'shared-buckets' });
  }

  /** True once this leader term ensured every bucket. */
  get ensuredThisTerm(): boolean {
    return this.ensured;
  }

  async start(signal: AbortSignal): Promise<void> {
    this.ensured = false;
    const aborted = (): boolean => signal.aborted;
    for (let failures = 0; !aborted(); failures++) {
      try {
        await this.ensureAll();
        break;
      } catch (err) {
        if (aborted()) return;
        if (!(err instanceof FerryNatsError) || !err.retryable) throw err;
        const inMs = Math.min(RETRY_MAX_MS, 500 * 2 ** Math.min(failures, 6));
        this.log.error({ err: err.message, retryInMs: inMs, failures: failures + 1 }, 'could not ensure the shared KV buckets; retrying');
        await this.deps.clock.sleep(inMs, signal).catch(() => undefined);
      }
    }
    await new Promise<void>((resolve) => {
      if (aborted()) {
        resolve();
        return;
      }
      signal.addEventListener('abort', () => {
        resolve();
      }, { once: true });
    });
  }

  private async ensureAll(): Promise<void> {
    if (this.deps.serverHasJetStream() === false) throw new JetStreamDisabledError();
    const r = await this.deps.jetstream.replication();
    for (const bucket of SHARED_BUCKETS) await this.deps.jetstream.ensureKvBucket(bucket);
    this.ensured = true;
    this.log.info({ replicas: r.replicas, clustered: r.clustered, reason: r.reason, buckets: SHARED_BUCKETS.map((b) => b.name) }, 'shared KV buckets ready');
  }
}
