/**
 * JetStream clients with Ferry's request timeout, and one management client per owner, created
 * on first use. A failed creation is not cached (the next call tries again), so a NATS outage at
 * start does not poison the owner.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type MsgRequest } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { translateNatsError } from './errors.ts';

/**
 * Timeout of every JetStream API request, KV operation and publish. On a cluster a stream or the
 * meta group elects a new leader within a few seconds of losing one (about 2–4 s measured on three
 * local nodes); a request made meanwhile must wait that out rather than fail and be retried.
 */
export const JETSTREAM_REQUEST_TIMEOUT_MS = 10_000;

/** A JetStream client (publish, consume, KV) with Ferry's timeout. */
export function jetstreamClient(nc: NatsConnection): JetStreamClient {
  return jetstream(nc, { timeout: JETSTREAM_REQUEST_TIMEOUT_MS });
}

export function lazyJetStreamManager(nc: NatsConnection): () => Promise<JetStreamManager> {
  let pending: Promise<JetStreamManager> | undefined;
  return async () => {
    pending ??= jetstreamManager(nc, { timeout: JETSTREAM_REQUEST_TIMEOUT_MS }).catch((err: unknown) => {
      pending = undefined;
      throw translateNatsError(err, 'opening the JetStream API');
    });
    return await pending;
  };
}

/**
 * A STREAM.MSG.GET request for the first message on `subject` at or after `seq`. The server takes
 * `next_by_subj` with `seq`; nats.js only types the request's other forms, but sends it as given.
 */
export function nextBySubject(seq: number, subject: string): MsgRequest {
  return { seq, next_by_subj: subject } as unknown as MsgRequest;
}
