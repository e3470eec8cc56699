/**
 * Idempotent provisioning of the JetStream resources Ferry objects need: calling any `ensure…`
 * twice with the same input changes nothing the second time, so the controller can call them on
 * every reconcile. The leader calls them; a SyncSchedule run also ensures its own bucket and
 * fallback stream (`ensureSyncScheduleStores`), as its scheduler runs on every replica and can be
 * ahead of the leader's reconcile.
 *
 * Replication: every stream and KV bucket Ferry creates gets the configured replicas (see
 * replication.ts); one that exists with fewer is scaled up (JetStream updates `num_replicas` in
 * place and copies the data). Source streams belong to the user: they are read, never changed.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamClient, lazyJetStreamManager, nextBySubject } from './jetstream-manager.ts';
import { syncFallbackStreamName, syncFallbackSubject, syncStateBucketName, type ObjectRef } from './names.ts';
import { detectReplication, type Replication } from './replication.ts';
import { ConsumerLimitError, isConsumerLimit, isConsumerNotFound, isStreamNotFound, StreamNotFoundError, translateNatsError } from './errors.ts';

export interface SourceStreamSpec {
  readonly name: string;
  readonly subjects: readonly string[];
  /** Create the stream when it is missing (spec.source.create); otherwise a missing one is an error. */
  readonly create: boolean;
}

export interface DurableConsumerSpec {
  readonly stream: string;
  readonly name: string;
  readonly filterSubjects: readonly string[];
  readonly ackWaitMs: number;
  /** A safety net above the runtime's own maxAttempts, never the retry policy itself. */
  readonly maxDeliver: number;
  readonly maxAckPending: number;
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * Where a NEW consumer starts in the stream: everything stored (`beginning`), only what is
   * published from now on (`new`), or from a time. An existing consumer keeps its position.
   */
  readonly startAt: { readonly kind: 'beginning' } | { readonly kind: 'new' } | { readonly kind: 'time'; readonly timeMs: number };
}

function deliverPolicy(startAt: DurableConsumerSpec['startAt']): Pick<ConsumerConfig, 'deliver_policy' | 'opt_start_time'> {
  switch (startAt.kind) {
    case 'beginning':
      return { deliver_policy: DeliverPolicy.All };
    case 'new':
      return { deliver_policy: DeliverPolicy.New };
    case 'time':
      return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(startAt.timeMs).toISOString() };
  }
}

export interface FallbackStreamSpec {
  readonly name: string;
  readonly subject: string;
  readonly maxAgeMs: number;
  /** Window in which a re-published `Nats-Msg-Id` is dropped as a duplicate. */
  readonly duplicateWindowMs: number;
}

export interface ResourcesOptions {
  /** Replicas of what Ferry creates: a number, or `auto` (see replication.ts). */
  readonly replicas: number | 'auto';
  /** Where fallback streams are placed (JetStream cluster name, server tags). */
  readonly fallbackPlacement?: { readonly cluster?: string; readonly tags?: readonly string[] } | undefined;
}

export interface KvBucketSpec {
  readonly name: string;
  readonly history?: number;
  /** Per-entry time to live (membership heartbeats); none by default. */
  readonly ttlMs?: number;
}

export interface ConsumerSummary {
  readonly name: string;
  readonly numPending: number;
  readonly numAckPending: number;
  readonly paused: boolean;
}

function sameSet(a: readonly string[] | undefined, b: readonly string[]): boolean {
  const left = [...(a ?? [])].sort();
  const right = [...b].sort();
  return left.length === right.length && left.every((v, i) => v === right[i]);
}

function filterOf(config: Partial<ConsumerConfig>): string[] {
  if (config.filter_subjects && config.filter_subjects.length > 0) return config.filter_subjects;
  return config.filter_subject ? [config.filter_subject] : [];
}

/** Dedup window of a SyncSchedule's fallback stream: a parking repeated after a crash is stored once. */
const SYNC_FALLBACK_DUPLICATE_WINDOW_MS = 24 * 3_600_000;

export class JetStreamResources {
  private readonly nc: NatsConnection;
  private readonly jsm: () => Promise<JetStreamManager>;
  private readonly options: ResourcesOptions;
  private detected: Promise<Replication> | undefined;

  constructor(nc: NatsConnection, options: ResourcesOptions = { replicas: 1 }) {
    this.nc = nc;
    this.jsm = lazyJetStreamManager(nc);
    this.options = options;
  }

  /** The replication decided for this process (detected once; a failed detection is retried). */
  async replication(): Promise<Replication> {
    this.detected ??= (async () => detectReplication(this.nc, await this.jsm(), this.options.replicas))().catch((err: unknown) => {
      this.detected = undefined;
      throw err;
    });
    return await this.detected;
  }

  /**
   * Returns the stream's subjects and replicas; throws StreamNotFoundError when missing and not to
   * be created. A stream Ferry creates for the user (`create`) gets Ferry's replicas.
   */
  async ensureSourceStream(spec: SourceStreamSpec): Promise<{ readonly subjects: readonly string[]; readonly replicas: number }> {
    const jsm = await this.jsm();
    try {
      const info = await jsm.streams.info(spec.name);
      return { subjects: info.config.subjects, replicas: info.config.num_replicas };
    } catch (err) {
      if (!isStreamNotFound(err)) throw translateNatsError(err, `reading stream ${spec.name}`);
    }
    if (!spec.create) throw new StreamNotFoundError(spec.name);
    const { replicas } = await this.replication();
    try {
      const info = await jsm.streams.add({
        name: spec.name,
        subjects: [...spec.subjects],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        num_replicas: replicas,
      });
      return { subjects: info.config.subjects, replicas: info.config.num_replicas };
    } catch (err) {
      throw translateNatsError(err, `creating stream ${spec.name}`);
    }
  }

  /** Creates the durable pull consumer, or updates the fields that may change on an existing one. */
  async ensureConsumer(spec: DurableConsumerSpec): Promise<void> {
    const jsm = await this.jsm();
    const wanted = {
      ack_wait: nanos(spec.ackWaitMs),
      max_deliver: spec.maxDeliver,
      max_ack_pending: spec.maxAckPending,
      metadata: { ...spec.metadata },
    };
    const filters = [...spec.filterSubjects];
    let existing: ConsumerInfo | undefined;
    try {
      existing = await jsm.consumers.info(spec.stream, spec.name);
    } catch (err) {
      if (isStreamNotFound(err)) throw new StreamNotFoundError(spec.stream, { cause: err });
      if (!isConsumerNotFound(err)) throw translateNatsError(err, `reading consumer ${spec.name}`);
    }
    try {
      if (!existing) {
        await jsm.consumers.add(spec.stream, {
          ...wanted,
          durable_name: spec.name,
          ack_policy: AckPolicy.Explicit,
          ...deliverPolicy(spec.startAt),
          replay_policy: ReplayPolicy.Instant,
          ...(filters.length === 1 ? { filter_subject: filters[0] } : { filter_subjects: filters }),
        });
        return;
      }
      const c = existing.config;
      const metadataSame = Object.entries(wanted.metadata).every(([k, v]) => c.metadata?.[k] === v);
      if (
        c.ack_wait === wanted.ack_wait &&
        c.max_deliver === wanted.max_deliver &&
        c.max_ack_pending === wanted.max_ack_pending &&
        metadataSame &&
        sameSet(filterOf(c), filters)
      ) {
        return;
      }
      await jsm.consumers.update(spec.stream, spec.name, {
        ...wanted,
        metadata: { ...c.metadata, ...wanted.metadata },
        ...(filters.length === 1 ? { filter_subject: filters[0], filter_subjects: [] } : { filter_subjects: filters, filter_subject: '' }),
      });
    } catch (err) {
      if (isConsumerLimit(err)) throw new ConsumerLimitError(spec.stream, { cause: err });
      throw translateNatsError(err, `provisioning consumer ${spec.name} on ${spec.stream}`);
    }
  }

  /** Returns the consumer's counters, or undefined when it (or its stream) does not exist. */
  async consumerSummary(stream: string, name: string): Promise<ConsumerSummary | undefined> {
    const jsm = await this.jsm();
    try {
      const info = await jsm.consumers.info(stream, name);
      return { name, numPending: info.num_pending, numAckPending: info.num_ack_pending, paused: info.paused ?? false };
    } catch (err) {
      if (isConsumerNotFound(err) || isStreamNotFound(err)) return undefined;
      throw translateNatsError(err, `reading consumer ${name}`);
    }
  }

  /**
   * When the oldest event the consumer has not acknowledged was stored in its stream (ms since
   * the epoch): the first message after the ack floor that matches the consumer's filter —
   * waiting in the stream (a paused consumer), or delivered and not yet acked. Undefined when
   * nothing is pending, or the consumer or its stream does not exist. One consumer-info request,
   * plus one message lookup per filter subject while something is pending.
   */
  async oldestUnacked(stream: string, name: string): Promise<number | undefined> {
    const jsm = await this.jsm();
    try {
      const info = await jsm.consumers.info(stream, name);
      if (info.num_pending + info.num_ack_pending === 0) return undefined;
      const seq = info.ack_floor.stream_seq + 1;
      const c = info.config;
      const filters = c.filter_subjects?.length ? c.filter_subjects : c.filter_subject ? [c.filter_subject] : ['>'];
      let oldest: number | undefined;
      for (const subject of filters) {
        const m = await jsm.streams.getMessage(stream, nextBySubject(seq, subject));
        if (m && (oldest === undefined || m.time.getTime() < oldest)) oldest = m.time.getTime();
      }
      return oldest;
    } catch (err) {
      if (isConsumerNotFound(err) || isStreamNotFound(err)) return undefined;
      throw translateNatsError(err, `reading the oldest pending event of consumer ${name}`);
    }
  }

  /** Deletes the consumer; true when it existed. Messages in the stream are untouched. */
  async deleteConsumer(stream: string, name: string): Promise<boolean> {
    const jsm = await this.jsm();
    try {
      return await jsm.consumers.delete(stream, name);
    } catch (err) {
      if (isConsumerNotFound(err) || isStreamNotFound(err)) return false;
      throw translateNatsError(err, `deleting consumer ${name}`);
    }
  }

  /**
   * Creates the fallback stream, or brings an existing one to the wanted retention, dedup window,
   * replicas (scaled up, never down) and placement. Parked messages are kept through every update.
   * Says whether it created the stream (then it holds nothing) or found one.
   */
  async ensureFallbackStream(spec: FallbackStreamSpec): Promise<'created' | 'existed'> {
    const jsm = await this.jsm();
    const { replicas } = await this.replication();
    const placement = this.placement();
    const wanted: Partial<StreamConfig> = {
      subjects: [spec.subject],
      max_age: nanos(spec.maxAgeMs),
      duplicate_window: nanos(Math.min(spec.duplicateWindowMs, spec.maxAgeMs)),
    };
    let existing: StreamConfig | undefined;
    try {
      existing = (await jsm.streams.info(spec.name)).config;
    } catch (err) {
      if (!isStreamNotFound(err)) throw translateNatsError(err, `provisioning fallback stream ${spec.name}`);
    }
    if (existing) {
      const c = existing;
      const scale = c.num_replicas < replicas;
      const move = placement !== undefined && ((c.placement?.cluster ?? '') !== placement.cluster || !sameSet(c.placement?.tags, placement.tags));
      if (c.max_age === wanted.max_age && c.duplicate_window === wanted.duplicate_window && sameSet(c.subjects, [spec.subject]) && !scale && !move) return 'existed';
      try {
        await jsm.streams.update(spec.name, {
          ...c,
          ...wanted,
          ...(scale ? { num_replicas: replicas } : {}),
          ...(move ? { placement } : {}),
        });
      } catch (err) {
        const what = scale ? ` (scaling from ${c.num_replicas} to ${replicas} replicas)` : '';
        throw translateNatsError(err, `updating fallback stream ${spec.name}${what}`);
      }
      return 'existed';
    }
    try {
      await jsm.streams.add({
        ...wanted,
        name: spec.name,
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        // Never drop a parked event to make room: a full fallback stream refuses new ones, and
        // the runtime then keeps the event in its source (nak) instead of losing it.
        discard: DiscardPolicy.New,
        num_replicas: replicas,
        ...(placement === undefined ? {} : { placement }),
      });
    } catch (err) {
      throw translateNatsError(err, `creating fallback stream ${spec.name}`);
    }
    return 'created';
  }

  /** Number of messages in a stream, or undefined when it does not exist. */
  async streamMessages(name: string): Promise<number | undefined> {
    const jsm = await this.jsm();
    try {
      return (await jsm.streams.info(name)).state.messages;
    } catch (err) {
      if (isStreamNotFound(err)) return undefined;
      throw translateNatsError(err, `reading stream ${name}`);
    }
  }

  /**
   * Creates the bucket with Ferry's replicas, or scales an existing one up (never down): a bucket
   * an older version created with one replica gets the configured number, its keys kept.
   */
  async ensureKvBucket(spec: KvBucketSpec): Promise<void> {
    const jsm = await this.jsm();
    const { replicas } = await this.replication();
    const stream = `KV_${spec.name}`;
    let existing: StreamConfig | undefined;
    try {
      existing = (await jsm.streams.info(stream)).config;
    } catch (err) {
      if (!isStreamNotFound(err)) throw translateNatsError(err, `reading KV bucket ${spec.name}`);
    }
    if (existing) {
      if (existing.num_replicas >= replicas) return;
      try {
        await jsm.streams.update(stream, { ...existing, num_replicas: replicas });
      } catch (err) {
        throw translateNatsError(err, `scaling KV bucket ${spec.name} from ${existing.num_replicas} to ${replicas} replicas`);
      }
      return;
    }
    try {
      await new Kvm(jetstreamClient(this.nc)).create(spec.name, {
        history: spec.history ?? 1,
        replicas,
        ...(spec.ttlMs === undefined ? {} : { ttl: spec.ttlMs }),
      });
    } catch (err) {
      throw translateNatsError(err, `creating KV bucket ${spec.name} with ${replicas} replicas`);
    }
  }

  /**
   * A SyncSchedule's own KV bucket (watermark, hashes, failed records) and its fallback stream.
   * Called by its reconcile and again before each of its runs: a slot due moments after the
   * object was created is seen by the scheduler (every replica, from the watch cache) before the
   * leader's reconcile has created them, and a run without its bucket could only fail.
   */
  async ensureSyncScheduleStores(ref: ObjectRef, fallbackRetentionMs: number): Promise<void> {
    await Promise.all([
      this.ensureKvBucket({ name: syncStateBucketName(ref), history: 1 }),
      this.ensureFallbackStream({
        name: syncFallbackStreamName(ref),
        subject: syncFallbackSubject(ref),
        maxAgeMs: fallbackRetentionMs,
        duplicateWindowMs: SYNC_FALLBACK_DUPLICATE_WINDOW_MS,
      }),
    ]);
  }

  private placement(): { cluster: string; tags: string[] } | undefined {
    const p = this.options.fallbackPlacement;
    if (!p) return undefined;
    return { cluster: p.cluster ?? '', tags: [...(p.tags ?? [])] };
  }
}
