/**
 * Confirmed acks without a request per ack: one reply subscription per connection, and one timer
 * armed only while confirmations are outstanding.
 *
 * Why: `JsMsg.ackAck()` makes a full request for every ack — a reply-mux entry, two deferred
 * promises, a timer, a `Promise.race`, and (in @nats-io/nats-core 3.x) a `RequestError` built with
 * its stack trace when the finished request is cancelled, on success too. On the pipeline's path
 * that was the largest single cost per event after the I/O itself.
 *
 * Guarantees: every `confirm` settles, with true when the server answered the ack (without an
 * error status) and false when it did not within `timeoutMs` (a little later at worst: the timer
 * is not re-armed per ack), or when the connection closed — the same meaning as `ackAck`. When the
 * reply subscription cannot be used (refused by permissions), it falls back to `ackAck`.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Clock } from '../observability/index.ts';

const ACK = new TextEncoder().encode('+ACK');

interface Waiter {
  readonly deadline: number;
  readonly resolve: (confirmed: boolean) => void;
}

export class AckConfirmations {
  private readonly nc: NatsConnection;
  private readonly clock: Clock;
  private readonly prefix: string;
  private readonly sub: Subscription;
  /** Outstanding confirmations by reply token, in the order the acks were sent. */
  private readonly waiting = new Map<string, Waiter>();
  private nextToken = 0;
  private cancelTimer: (() => void) | undefined;
  private broken = false;

  constructor(nc: NatsConnection, clock: Clock) {
    this.nc = nc;
    this.clock = clock;
    this.prefix = `${createInbox()}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, {
      callback: (err, msg) => {
        if (err) {
          // The subscription is gone (refused): confirm the usual way from now on.
          this.broken = true;
          this.settleAll(false);
          return;
        }
        this.onReply(msg);
      },
    });
    void nc.closed().then(() => {
      this.broken = true;
      this.settleAll(false);
    });
  }

  /** Acks `m` and resolves whether the server confirmed it; never rejects. */
  confirm(m: JsMsg, timeoutMs: number): Promise<boolean> {
    const reply = replySubject(m);
    if (this.broken || this.sub.isClosed() || reply === undefined) return m.ackAck({ timeout: timeoutMs }).catch(() => false);
    const token = (this.nextToken++).toString(36);
    return new Promise<boolean>((resolve) => {
      this.waiting.set(token, { deadline: this.clock.now() + timeoutMs, resolve });
      try {
        this.nc.publish(reply, ACK, { reply: `${this.prefix}${token}` });
      } catch {
        // Not sent (connection closing): not confirmed.
        this.waiting.delete(token);
        resolve(false);
        return;
      }
      this.arm();
    });
  }

  /** Outstanding confirmations (for tests). */
  get pending(): number {
    return this.waiting.size;
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.prefix.length);
    const waiter = this.waiting.get(token);
    if (!waiter) return; // already timed out
    this.waiting.delete(token);
    // A status reply (503 no responders, …) is not a confirmation.
    waiter.resolve(!msg.headers?.hasError);
  }

  private arm(): void {
    if (this.cancelTimer !== undefined || this.waiting.size === 0) return;
    // Acks are kept in the order they were sent, and a process uses one timeout: the first is
    // the earliest deadline. (With mixed timeouts a shorter one behind a longer one is settled
    // when this timer fires, later than its own deadline — never earlier.)
    const first = this.waiting.values().next();
    if (first.done) return;
    const earliest = first.value.deadline;
    this.cancelTimer = this.clock.setTimer(() => {
      this.cancelTimer = undefined;
      this.expire();
    }, Math.max(1, earliest - this.clock.now()));
  }

  /** Settles every confirmation past its deadline, then waits for the next one. */
  private expire(): void {
    const now = this.clock.now();
    for (const [token, w] of this.waiting) {
      if (w.deadline > now) continue;
      this.waiting.delete(token);
      w.resolve(false);
    }
    this.arm();
  }

  private settleAll(confirmed: boolean): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of all) w.resolve(confirmed);
  }
}

/**
 * The subject an ack is published to. @nats-io/jetstream's `JsMsg` interface does not declare it,
 * but its implementation has it (`ackAck` uses it); anything else takes the `ackAck` path.
 */
function replySubject(m: JsMsg): string | undefined {
  if (!('reply' in m)) return undefined;
  const reply: unknown = m.reply;
  return typeof reply === 'string' && reply !== '' ? reply : undefined;
}

const perConnection = new WeakMap<NatsConnection, AckConfirmations>();

/** The connection's confirmations (one subscription per connection, created on first use). */
export function ackConfirmations(nc: NatsConnection, clock: Clock): AckConfirmations {
  let found = perConnection.get(nc);
  if (!found) {
    found = new AckConfirmations(nc, clock);
    perConnection.set(nc, found);
  }
  return found;
}
