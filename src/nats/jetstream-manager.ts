/**
 * One JetStream management client per owner, created on first use. A failed creation is not
 * cached (the next call tries again), so a NATS outage at start does not poison the owner.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { translateNatsError } from './errors.ts';

export function lazyJetStreamManager(nc: NatsConnection): () => Promise<JetStreamManager> {
  let pending: Promise<JetStreamManager> | undefined;
  return async () => {
    pending ??= jetstreamManager(nc).catch((err: unknown) => {
      pending = undefined;
      throw translateNatsError(err, 'opening the JetStream API');
    });
    return await pending;
  };
}
