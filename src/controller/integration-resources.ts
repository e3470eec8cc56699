/**
 * What JetStream holds for one Integration: its durable consumer on the source stream and its
 * fallback stream, as specs for src/nats provisioning. The controller provisions them on every
 * reconcile; `ferry run` (one Integration without a cluster) provisions the same ones, so the two
 * can never disagree about ack_wait, limits or retention.
 */
import type { ResolvedIntegrationConfig } from '../api/index.ts';
import { fallbackStreamName, fallbackSubject, integrationConsumerName, type DurableConsumerSpec, type FallbackStreamSpec, type ObjectRef } from '../nats/index.ts';

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
