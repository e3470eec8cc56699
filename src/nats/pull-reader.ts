/**
 * Reads an Integration's durable pull consumer as a stream of Ferry-typed messages, for the
 * runtime on every replica. The JetStream vocabulary stays here: callers see `ack`,
 * `nak(delayMs)`, `working`, `term(reason)` and plain fields, never @nats-io types.
 *
 * Guarantees: the iterator keeps going across NATS reconnects, missed heartbeats and a consumer
 * that is briefly missing (it re-creates the pull after a capped backoff and logs why); it ends
 * only when `signal` aborts. At most `maxMessages` messages are buffered client-side.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import type { Clock, Logger } from '../observability/index.ts';
import { jetstreamClient } from './jetstream-manager.ts';

export interface InboundMessage {
  readonly data: Uint8Array;
  readonly subject: string;
  /** Header values by name as sent (case preserved); undefined when the message had none. */
  readonly headers: ReadonlyMap<string, readonly string[]> | undefined;
  readonly stream: string;
  readonly streamSequence: number;
  /** 1 on the first delivery; JetStream counts every redelivery, so this is the attempt number. */
  readonly deliveryCount: number;
  /** When the message was stored in the stream (ms since the epoch). */
  readonly storedAtMs: number;
  ack(): void;
  /**
   * Acks and waits for the server to confirm it. Resolves false when the confirmation did not
   * come (timeout, connection lost): the server may or may not have the ack, so the message may
   * come back — the caller must recognise it then.
   */
  ackConfirmed(timeoutMs: number): Promise<boolean>;
  nak(delayMs: number): void;
  working(): void;
  term(reason: string): void;
}

function headerMap(h: MsgHdrs | undefined): ReadonlyMap<string, readonly string[]> | undefined {
  if (!h) return undefined;
  const map = new Map<string, readonly string[]>();
  for (const k of h.keys()) map.set(k, h.values(k));
  return map;
}

function wrap(m: JsMsg): InboundMessage {
  // Headers are converted only when read: many events carry none, and the conversion allocates.
  let headers: ReadonlyMap<string, readonly string[]> | undefined | null = null;
  return {
    data: m.data,
    subject: m.subject,
    get headers() {
      if (headers === null) headers = headerMap(m.headers);
      return headers;
    },
    stream: m.info.stream,
    streamSequence: m.info.streamSequence,
    deliveryCount: m.info.deliveryCount,
    storedAtMs: Math.floor(m.info.timestampNanos / 1e6),
    ack: () => {
      m.ack();
    },
    ackConfirmed: async (timeoutMs) => {
      try {
        return await m.ackAck({ timeout: timeoutMs });
      } catch {
        return false;
      }
    },
    nak: (delayMs) => {
      // Always with a delay: a plain nak() ignores the consumer's backoff and redelivers at once.
      m.nak(Math.max(1, Math.round(delayMs)));
    },
    working: () => {
      m.working();
    },
    term: (reason) => {
      m.term(reason);
    },
  };
}

export interface PullReaderOptions {
  readonly nc: NatsConnection;
  readonly stream: string;
  readonly consumer: string;
  readonly maxMessages: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

export async function* readConsumer(options: PullReaderOptions, signal: AbortSignal): AsyncGenerator<InboundMessage> {
  const js = jetstreamClient(options.nc);
  const log = options.logger.child({ stream: options.stream, consumer: options.consumer });
  let failures = 0;
  // A function, not the property: TypeScript would otherwise narrow `signal.aborted` to false
  // inside the loop, though an abort can happen at any await.
  const aborted = (): boolean => signal.aborted;
  while (!aborted()) {
    let messages: Awaited<ReturnType<Awaited<ReturnType<typeof js.consumers.get>>['consume']>> | undefined;
    const onAbort = (): void => {
      void messages?.close();
    };
    try {
      signal.addEventListener('abort', onAbort, { once: true });
      const consumer = await js.consumers.get(options.stream, options.consumer);
      messages = await consumer.consume({ max_messages: options.maxMessages, idle_heartbeat: 5_000, expires: 30_000 });
      failures = 0;
      // An abort that came while the consume was being set up found nothing to close: close now,
      // or the loop below would wait for messages forever and the pipeline would never stop.
      if (aborted()) void messages.close();
      for await (const m of messages) {
        if (aborted()) {
          // Pulled but never started: give it back now instead of after ack_wait.
          m.nak(1);
          continue;
        }
        yield wrap(m);
      }
    } catch (err) {
      if (aborted()) break;
      failures += 1;
      log.warn({ err, failures }, 'consumer read failed; retrying');
    } finally {
      signal.removeEventListener('abort', onAbort);
      await messages?.close();
    }
    if (aborted()) break;
    // The iterator ended without our asking (consumer deleted and re-created, connection lost).
    const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
    try {
      await options.clock.sleep(delay, signal);
    } catch {
      break;
    }
  }
}
