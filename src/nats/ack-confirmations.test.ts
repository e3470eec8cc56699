import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsMsg } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { ManualClock } from '../observability/index.ts';
import { AckConfirmations } from './ack-confirmations.ts';

/** Just what AckConfirmations uses of a connection: subscribe, publish, closed. */
class FakeConnection {
  callback: ((err: Error | null, msg: Msg) => void) | undefined;
  subject = '';
  readonly published: { subject: string; data: string; reply: string }[] = [];
  closeNow: () => void = () => undefined;
  private readonly closedPromise = new Promise<void>((resolve) => (this.closeNow = resolve));

  subscribe(subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }): { isClosed(): boolean } {
    this.subject = subject;
    this.callback = opts.callback;
    return { isClosed: () => false };
  }

  publish(subject: string, data: Uint8Array, opts: { reply: string }): void {
    this.published.push({ subject, data: new TextDecoder().decode(data), reply: opts.reply });
  }

  closed(): Promise<void> {
    return this.closedPromise;
  }

  /** The server answers the i-th ack, with an error status when `status` is set. */
  answer(i: number, status?: number): void {
    const reply = this.published[i]?.reply ?? '';
    const msg = { subject: reply, headers: status === undefined ? undefined : { hasError: status >= 300 } };
    this.callback?.(null, msg as unknown as Msg);
  }
}

function jsMsg(reply: string): JsMsg & { ackAcks: number } {
  const m = {
    reply,
    ackAcks: 0,
    ackAck() {
      m.ackAcks += 1;
      return Promise.resolve(true);
    },
  };
  return m as unknown as JsMsg & { ackAcks: number };
}

function setup(): { nc: FakeConnection; clock: ManualClock; acks: AckConfirmations } {
  const nc = new FakeConnection();
  const clock = new ManualClock();
  return { nc, clock, acks: new AckConfirmations(nc as unknown as NatsConnection, clock) };
}

describe('AckConfirmations', () => {
  it('publishes +ACK to the message reply with a reply of its own, and resolves true on the answer', async () => {
    const { nc, acks } = setup();
    const confirmed = acks.confirm(jsMsg('$JS.ACK.S.C.1.1.1.0.0'), 5_000);
    assert.equal(nc.published.length, 1);
    assert.deepEqual({ subject: nc.published[0]?.subject, data: nc.published[0]?.data }, { subject: '$JS.ACK.S.C.1.1.1.0.0', data: '+ACK' });
    assert.ok(nc.published[0]?.reply.startsWith(nc.subject.slice(0, -1)));
    nc.answer(0);
    assert.equal(await confirmed, true);
    assert.equal(acks.pending, 0);
  });

  it('matches answers to their acks, whatever the order', async () => {
    const { nc, acks } = setup();
    const all = [0, 1, 2].map((i) => acks.confirm(jsMsg(`$JS.ACK.S.C.1.${i}.1.0.0`), 5_000));
    nc.answer(2);
    nc.answer(0);
    nc.answer(1, 503);
    assert.deepEqual(await Promise.all(all), [true, false, true]);
  });

  it('resolves false when no answer comes within the timeout, and ignores a late answer', async () => {
    const { nc, clock, acks } = setup();
    const confirmed = acks.confirm(jsMsg('$JS.ACK.S.C.1.1.1.0.0'), 5_000);
    await clock.advance(4_999);
    assert.equal(acks.pending, 1);
    await clock.advance(1);
    assert.equal(await confirmed, false);
    nc.answer(0);
    assert.equal(acks.pending, 0);
  });

  it('resolves false for everything outstanding when the connection closes', async () => {
    const { nc, acks } = setup();
    const confirmed = acks.confirm(jsMsg('$JS.ACK.S.C.1.1.1.0.0'), 5_000);
    nc.closeNow();
    assert.equal(await confirmed, false);
  });

  it('falls back to ackAck for a message without a reply subject', async () => {
    const { nc, acks } = setup();
    const m = jsMsg('');
    assert.equal(await acks.confirm(m, 5_000), true);
    assert.equal(m.ackAcks, 1);
    assert.equal(nc.published.length, 0);
  });
});
