/**
 * Publishes an undeliverable event to its Integration's fallback stream and waits for the
 * PubAck. `Nats-Msg-Id` is `<source stream>:<sequence>`, so a re-publish after a crash between
 * the PubAck and the term is dropped by the stream's duplicate window: one event, one entry.
 * The webhook ingress publishes through it too (its own message ids, one attempt: the sender retries).
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { translateNatsError } from './errors.ts';
import { jetstreamClient, JETSTREAM_REQUEST_TIMEOUT_MS } from './jetstream-manager.ts';

export interface FallbackMessage {
  readonly subject: string;
  readonly msgId: string;
  readonly payload: Uint8Array;
  /** Original headers first, then Ferry's; Ferry's win on a name clash. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

export class FallbackPublisher {
  private readonly js;

  constructor(nc: NatsConnection) {
    this.js = jetstreamClient(nc);
  }

  /**
   * Resolves once the stream stored it (or already had it); throws a Ferry NATS error otherwise.
   * `attempts` bounds the tries after a timeout or no responders (each up to `timeoutMs`).
   */
  async publish(message: FallbackMessage, timeoutMs = JETSTREAM_REQUEST_TIMEOUT_MS, attempts = 3): Promise<{ readonly seq: number; readonly duplicate: boolean }> {
    const h = natsHeaders();
    for (const [name, values] of message.headers) for (const v of values) h.append(name, v);
    try {
      // A few retries: on a cluster a publish made during an election finds no responder for a moment.
      const ack = await this.js.publish(message.subject, message.payload, { msgID: message.msgId, headers: h, timeout: timeoutMs, retries: attempts });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      throw translateNatsError(err, `publishing to ${message.subject}`);
    }
  }
}
