/**
 * What JetStream holds for one Integration: its durable consumer on the source stream and its
 * fallback stream, as specs for src/nats provisioning. The controller provisions them on every
 * reconcile; `ferry run` (one Integration without a cluster) provisions the same ones, so the two
 * can never disagree about ack_wait, limits or retention.
 */
import type { ResolvedIntegrationConfig } from '../api/index.ts';
import {
  fallbackStreamName,
  fallbackSubject,
  integrationConsumerName,
  parseFallbackStreamName,
  parseIntegrationConsumerName,
  type DurableConsumerSpec,
  type FallbackStreamSpec,
  type JetStreamChange,
  type ObjectRef,
} from '../nats/index.ts';
import { objectKey, type Store } from '../kube/index.ts';
import type { FerryObject } from './ferry-object.ts';

/** Fallback publishes carry `Nats-Msg-Id: <stream>:<seq>`; a re-publish within this window is dropped. */
export const FALLBACK_DUPLICATE_WINDOW_MS = 60 * 60 * 1000;

/** The durable pull consumer every replica binds for the Integration. */
export function integrationConsumerSpec(ref: ObjectRef, config: ResolvedIntegrationConfig, generation: number): DurableConsumerSpec {
  return {
    stream: config.source.stream,
    name: integrationConsumerName(ref),
    filterSubjects: config.source.subjects,
    // Long attempts call working(); ack_wait only has to outlast one attempt's timeout.
    ackWaitMs: config.target.timeoutMs + 30_000,
    // Unlimited: the runtime counts attempts itself (the attempts ledger) and parks at
    // maxAttempts; a server-side limit would end redelivery silently, event neither
    // delivered nor parked.
    maxDeliver: -1,
    maxAckPending: Math.max(config.delivery.concurrency * 8, 64),
    metadata: { 'ferry.dev/integration': `${ref.namespace}/${ref.name}`, 'ferry.dev/generation': String(generation) },
    startAt: config.source.startAt,
  };
}

/** The stream that keeps the Integration's undeliverable events. */
export function integrationFallbackSpec(ref: ObjectRef, config: ResolvedIntegrationConfig): FallbackStreamSpec {
  return { name: fallbackStreamName(ref), subject: fallbackSubject(ref), maxAgeMs: config.fallback.retentionMs, duplicateWindowMs: FALLBACK_DUPLICATE_WINDOW_MS };
}

/** The parts of an Integration a JetStream change is matched against. */
export interface IntegrationResourceRef extends ObjectRef {
  readonly sourceStream: string | undefined;
}

/**
 * Whether a change to JetStream concerns this Integration: its own consumer or fallback stream
 * deleted, or its source stream created, deleted or updated. A consumer of the same name on
 * another stream is not its own (another tool's, or an old source the spec moved away from).
 */
export function concernsIntegration(change: JetStreamChange, ref: IntegrationResourceRef): boolean {
  if (change.kind === 'consumer-deleted') return change.stream === ref.sourceStream && change.consumer === integrationConsumerName(ref);
  return change.stream === ref.sourceStream || (change.kind !== 'stream-created' && change.stream === fallbackStreamName(ref));
}

/** `spec.source.stream` of an unparsed spec, if it is a string. */
export function sourceStreamOf(spec: unknown): string | undefined {
  const source = typeof spec === 'object' && spec !== null ? (spec as { source?: unknown }).source : undefined;
  const stream = typeof source === 'object' && source !== null ? (source as { stream?: unknown }).stream : undefined;
  return typeof stream === 'string' ? stream : undefined;
}

/**
 * The keys of the cached Integrations a JetStream change concerns. A consumer or fallback stream
 * names its one owner (looked up, not searched for: every fallback stream Ferry creates is
 * announced, and a scan of every Integration per announcement grows with N²); any other stream
 * is a source stream, shared by every Integration that reads it.
 */
export function integrationsConcerned(change: JetStreamChange, store: Pick<Store<FerryObject>, 'get' | 'list'>): string[] {
  const concerned = (obj: FerryObject | undefined): obj is FerryObject => {
    const namespace = obj?.metadata?.namespace;
    const name = obj?.metadata?.name;
    return namespace !== undefined && name !== undefined && concernsIntegration(change, { namespace, name, sourceStream: sourceStreamOf(obj?.spec) });
  };
  const lookUp = (owner: ObjectRef | undefined): string[] => {
    const obj = owner && store.get(`${owner.namespace}/${owner.name}`);
    return concerned(obj) ? [objectKey(obj)] : [];
  };
  if (change.kind === 'consumer-deleted') return lookUp(parseIntegrationConsumerName(change.consumer));
  const fallbackOf = parseFallbackStreamName(change.stream);
  if (fallbackOf) return fallbackOf.kind === 'Integration' ? lookUp(fallbackOf) : [];
  return store
    .list()
    .filter((obj) => sourceStreamOf(obj.spec) === change.stream && concerned(obj))
    .map((obj) => objectKey(obj));
}
