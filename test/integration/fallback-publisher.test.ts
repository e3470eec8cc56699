/**
 * The fallback publisher against a real nats-server behind a slow link: a try whose reply is
 * late was stored all the same, and the retry's "duplicate" answer is that try, not an earlier
 * park — so the pipeline counts the event once, not zero times.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats, FallbackPublisher, type NatsConnection } from '../../src/nats/index.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const STREAM = 'FERRY_FALLBACK_shop_orders';
const SUBJECT = 'ferry.fallback.shop.orders';

describe('fallback publisher', () => {
  let env: ControlPlane;
  let proxy: TcpProxy;
  let nc: NatsConnection;

  before(async () => {
    env = await startControlPlane({ kube: false });
    const url = new URL(env.natsUrl);
    proxy = await startTcpProxy(url.hostname, Number(url.port));
    nc = await connectNats({ servers: `nats://${proxy.address}`, name: 'fallback-publisher-test', logger: silentLogger() });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAM, subjects: [SUBJECT], duplicate_window: 60_000_000_000 });
  });
  after(async () => {
    await nc.close();
    await proxy.close();
    await env.stop();
  });

  const message = (msgId: string): Parameters<FallbackPublisher['publish']>[0] => ({
    subject: SUBJECT,
    msgId,
    payload: new TextEncoder().encode(JSON.stringify({ id: msgId })),
    headers: new Map([['Ferry-Reason', ['http']]]),
  });

  it('a try that timed out but was stored: the retry stores nothing more and the event is new to the caller', async () => {
    const publisher = new FallbackPublisher(nc);
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(STREAM)).state.messages;
    // The first try reaches the server after 300 ms, long after its 100 ms timeout; the link is
    // fast again for the retries, which the server answers "duplicate".
    proxy.setLatency(300);
    const fast = setTimeout(() => {
      proxy.setLatency(0);
    }, 150);
    try {
      const ack = await publisher.publish(message('ORDERS:1'), 100, 10);
      assert.equal(ack.duplicate, false, 'the stored try is this call’s own');
    } finally {
      clearTimeout(fast);
      proxy.setLatency(0);
    }
    assert.equal((await jsm.streams.info(STREAM)).state.messages, before + 1, 'stored once');

    // Published again later (a park whose term was lost): that is a duplicate.
    const again = await publisher.publish(message('ORDERS:1'));
    assert.equal(again.duplicate, true);
    assert.equal((await jsm.streams.info(STREAM)).state.messages, before + 1);
  });

  it('gives up after its attempts with a typed, retryable error and names the subject', async () => {
    const publisher = new FallbackPublisher(nc);
    proxy.setLatency(400);
    try {
      await assert.rejects(publisher.publish(message('ORDERS:2'), 50, 2), (err: unknown) => {
        assert.ok(err instanceof Error && 'code' in err && err.code === 'NATS_UNAVAILABLE', String(err));
        assert.ok('retryable' in err && err.retryable === true);
        assert.match(err.message, /publishing to ferry\.fallback\.shop\.orders/);
        return true;
      });
    } finally {
      proxy.setLatency(0);
    }
  });
});
