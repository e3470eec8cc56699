/**
 * Reads an Integration's durable pull consumer as a stream of Ferry-typed messages, for the
 * runtime on every replica. The JetStream vocabulary stays here: callers see `ack`,
 * `nak(delayMs)`, `working`, `term(reason)` and plain fields, never @nats-io types.
 *
 * Guarantees: the reader keeps going across NATS reconnects, missed heartbeats and a consumer
 * that is briefly missing (it re-creates the pull after a capped backoff and logs why); it ends
 * only when `signal` aborts. At most `maxMessages` messages are buffered client-side.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import type { Clock, Logger } from '../observability/index.ts';
import { ackConfirmations, type AckConfirmations } from './ack-confirmations.ts';
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

/**
 * A JetStream message in Ferry's vocabulary. A class, not an object literal of closures: one
 * allocation per message instead of seven, on a path that runs for every event; the delivery
 * info is read once. Headers are converted only when read: many events carry none, and the
 * conversion allocates.
 */
class JsInbound implements InboundMessage {
  readonly data: Uint8Array;
  readonly subject: string;
  readonly stream: string;
  readonly streamSequence: number;
  readonly deliveryCount: number;
  readonly storedAtMs: number;
  private readonly m: JsMsg;
  private readonly acks: AckConfirmations;
  /** Acked: a lease renewal after it would be a protocol message about nothing. */
  private acked = false;
  private converted: ReadonlyMap<string, readonly string[]> | undefined | null = null;

  constructor(m: JsMsg, acks: AckConfirmations) {
    this.m = m;
    this.acks = acks;
    this.data = m.data;
    this.subject = m.subject;
    const info = m.info;
    this.stream = info.stream;
    this.streamSequence = info.streamSequence;
    this.deliveryCount = info.deliveryCount;
    this.storedAtMs = Math.floor(info.timestampNanos / 1e6);
  }

  get headers(): ReadonlyMap<string, readonly string[]> | undefined {
    if (this.converted === null) this.converted = headerMap(this.m.headers);
    return this.converted;
  }

  ack(): void {
    this.acked = true;
    this.m.ack();
  }

  ackConfirmed(timeoutMs: number): Promise<boolean> {
    this.acked = true;
    return this.acks.confirm(this.m, timeoutMs);
  }

  nak(delayMs: number): void {
    // Always with a delay: a plain nak() ignores the consumer's backoff and redelivers at once.
    this.m.nak(Math.max(1, Math.round(delayMs)));
  }

  working(): void {
    if (!this.acked) this.m.working();
  }

  term(reason: string): void {
    this.m.term(reason);
  }
}

export interface PullReaderOptions {
  readonly nc: NatsConnection;
  readonly stream: string;
  readonly consumer: string;
  readonly maxMessages: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Hands every message to `onMessage` as it arrives, synchronously from the subscription's
 * callback: no async iterator and no promise hop per message (the pipeline's hot path).
 * `onMessage` must not throw (a throw stops the underlying consume, which is then re-created).
 * Resolves only when `signal` aborts; messages that arrive after that are handed back at once.
 */
export async function consumeMessages(options: PullReaderOptions, signal: AbortSignal, onMessage: (msg: InboundMessage) => void): Promise<void> {
  const js = jetstreamClient(options.nc);
  const log = options.logger.child({ stream: options.stream, consumer: options.consumer });
  let failures = 0;
  // A function, not the property: TypeScript would otherwise narrow `signal.aborted` to false
  // inside the loop, though an abort can happen at any await.
  const aborted = (): boolean => signal.aborted;
  const acks = ackConfirmations(options.nc, options.clock);
  const deliver = (m: JsMsg): void => {
    if (aborted()) {
      // Pulled but never started: give it back now instead of after ack_wait.
      m.nak(1);
      return;
    }
    onMessage(new JsInbound(m, acks));
  };
  while (!aborted()) {
    let messages: Awaited<ReturnType<Awaited<ReturnType<typeof js.consumers.get>>['consume']>> | undefined;
    const onAbort = (): void => {
      void messages?.close();
    };
    try {
      signal.addEventListener('abort', onAbort, { once: true });
      const consumer = await js.consumers.get(options.stream, options.consumer);
      messages = await consumer.consume({ max_messages: options.maxMessages, idle_heartbeat: 5_000, expires: 30_000, callback: deliver });
      failures = 0;
      // An abort that came while the consume was being set up found nothing to close: close now,
      // or the wait below would never end and the pipeline would never stop.
      if (aborted()) void messages.close();
      // Resolves with the error that ended the consume, if one did (as the iterator would throw it).
      const ended = await messages.closed();
      if (ended) throw ended;
    } catch (err) {
      if (aborted()) break;
      failures += 1;
      log.warn({ err, failures }, 'consumer read failed; retrying');
    } finally {
      signal.removeEventListener('abort', onAbort);
      await messages?.close();
    }
    if (aborted()) break;
    // The consume ended without our asking (consumer deleted and re-created, connection lost).
    const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
    try {
      await options.clock.sleep(delay, signal);
    } catch {
      break;
    }
  }
}

/**
 * The same messages as an async iterator, for callers that pull one at a time (tools, tests).
 * Ends when `signal` aborts; a caller that stops iterating early must abort `signal` too, or the
 * consume keeps running.
 */
export async function* readConsumer(options: PullReaderOptions, signal: AbortSignal): AsyncGenerator<InboundMessage> {
  const queue: InboundMessage[] = [];
  let wake: (() => void) | undefined;
  // An object, not a local: TypeScript would narrow a local to false across the awaits below.
  const state = { done: false };
  const running = consumeMessages(options, signal, (msg) => {
    queue.push(msg);
    wake?.();
  }).finally(() => {
    state.done = true;
    wake?.();
  });
  for (;;) {
    const msg = queue.shift();
    if (msg) {
      yield msg;
      continue;
    }
    if (state.done) break;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
  await running;
}
