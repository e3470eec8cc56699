/**
 * Publishes an undeliverable event to its Integration's fallback stream and waits for the
 * PubAck. `Nats-Msg-Id` is `<source stream>:<sequence>`, so a re-publish after a crash between
 * the PubAck and the term is dropped by the stream's duplicate window: one event, one entry.
 * The webhook ingress publishes through it too (its own message ids, one attempt: the sender retries).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { errors as coreErrors, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { isDuplicateInProcess, isNoResponders, translateNatsError } from './errors.ts';
import { jetstreamClient, JETSTREAM_REQUEST_TIMEOUT_MS } from './jetstream-manager.ts';

export interface FallbackMessage {
  readonly subject: string;
  readonly msgId: string;
  readonly payload: Uint8Array;
  /** Original headers first, then Ferry's; Ferry's win on a name clash. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

/** Pause before try n + 1: a cluster election settles within a few of these. */
const pauseMs = (n: number): number => Math.min(1_000, 100 * 2 ** (n - 1));

export class FallbackPublisher {
  private readonly js;

  constructor(nc: NatsConnection) {
    this.js = jetstreamClient(nc);
  }

  /**
   * Resolves once the stream stored it (or already had it); throws a Ferry NATS error otherwise.
   * `attempts` bounds the tries (each up to `timeoutMs`) after a timeout, no responders (an
   * election), or an earlier try with the same id still being stored.
   *
   * `duplicate` means stored before this call (a park whose term was lost). A duplicate answer to
   * a retry after one of this call's own tries timed out or was in process is that try, stored:
   * not a duplicate to the caller, who counts the event once.
   */
  async publish(message: FallbackMessage, timeoutMs = JETSTREAM_REQUEST_TIMEOUT_MS, attempts = 3): Promise<{ readonly seq: number; readonly duplicate: boolean }> {
    const h = natsHeaders();
    for (const [name, values] of message.headers) for (const v of values) h.append(name, v);
    let ownTryMayBeStored = false;
    for (let n = 1; ; n++) {
      try {
        const ack = await this.js.publish(message.subject, message.payload, { msgID: message.msgId, headers: h, timeout: timeoutMs });
        return { seq: ack.seq, duplicate: ack.duplicate && !ownTryMayBeStored };
      } catch (err) {
        const timedOut = err instanceof coreErrors.TimeoutError;
        const inProcess = isDuplicateInProcess(err);
        if (n >= attempts || !(timedOut || inProcess || isNoResponders(err))) throw translateNatsError(err, `publishing to ${message.subject}`);
        ownTryMayBeStored ||= timedOut || inProcess;
        await sleep(pauseMs(n));
      }
    }
  }
}
