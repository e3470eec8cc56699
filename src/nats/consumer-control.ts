/**
 * Server-side controls on a durable consumer that act on every replica at once: pausing it
 * (nats-server ≥ 2.11) while a circuit is open, and narrowing `max_ack_pending` to 1 so the
 * server itself lets exactly one half-open probe through across all replicas.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { translateNatsError } from './errors.ts';
import { lazyJetStreamManager } from './jetstream-manager.ts';

export class ConsumerControl {
  private readonly manager: () => Promise<JetStreamManager>;

  constructor(nc: NatsConnection) {
    this.manager = lazyJetStreamManager(nc);
  }

  async pause(stream: string, consumer: string, untilMs: number): Promise<void> {
    try {
      await (await this.manager()).consumers.pause(stream, consumer, new Date(untilMs));
    } catch (err) {
      throw translateNatsError(err, `pausing consumer ${consumer}`);
    }
  }

  async resume(stream: string, consumer: string): Promise<void> {
    try {
      await (await this.manager()).consumers.resume(stream, consumer);
    } catch (err) {
      throw translateNatsError(err, `resuming consumer ${consumer}`);
    }
  }

  async setMaxAckPending(stream: string, consumer: string, maxAckPending: number): Promise<void> {
    try {
      await (await this.manager()).consumers.update(stream, consumer, { max_ack_pending: maxAckPending });
    } catch (err) {
      throw translateNatsError(err, `updating consumer ${consumer}`);
    }
  }

  async state(stream: string, consumer: string): Promise<{ readonly paused: boolean; readonly maxAckPending: number; readonly numAckPending: number; readonly numPending: number }> {
    try {
      const info = await (await this.manager()).consumers.info(stream, consumer);
      return { paused: info.paused ?? false, maxAckPending: info.config.max_ack_pending ?? -1, numAckPending: info.num_ack_pending, numPending: info.num_pending };
    } catch (err) {
      throw translateNatsError(err, `reading consumer ${consumer}`);
    }
  }
}
