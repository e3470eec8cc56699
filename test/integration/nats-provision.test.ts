/**
 * JetStream provisioning against a real nats-server: idempotent, updates in place, typed errors,
 * and deleting a consumer never touches the stream's messages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connectNats, JetStreamResources, readConsumer, StreamNotFoundError, type NatsConnection } from '../../src/nats/index.ts';
import { silentLogger, systemClock } from '../../src/observability/index.ts';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';

describe('JetStream provisioning', () => {
  let env: ControlPlane;
  let nc: NatsConnection;
  let resources: JetStreamResources;

  before(async () => {
    env = await startControlPlane({ kube: false });
    nc = await connectNats({ servers: env.natsUrl, name: 'provision-test', logger: silentLogger() });
    resources = new JetStreamResources(nc);
  });
  after(async () => {
    await nc.close();
    await env.stop();
  });

  it('refuses a missing source stream unless asked to create it', async () => {
    await assert.rejects(resources.ensureSourceStream({ name: 'MISSING', subjects: ['missing.>'], create: false }), (err) => {
      assert.ok(err instanceof StreamNotFoundError);
      assert.equal(err.code, 'STREAM_NOT_FOUND');
      assert.equal(err.stream, 'MISSING');
      return true;
    });
    const made = await resources.ensureSourceStream({ name: 'ORDERS', subjects: ['orders.>'], create: true });
    assert.deepEqual(made.subjects, ['orders.>']);
    const again = await resources.ensureSourceStream({ name: 'ORDERS', subjects: ['orders.>'], create: true });
    assert.deepEqual(again.subjects, ['orders.>']);
  });

  it('creates a durable consumer once and updates it in place', async () => {
    const spec = {
      stream: 'ORDERS',
      name: 'ferry_shop_orders',
      filterSubjects: ['orders.created'],
      ackWaitMs: 30_000,
      maxDeliver: 10,
      maxAckPending: 64,
      metadata: { 'ferry.dev/integration': 'shop/orders' },
      startAt: { kind: 'beginning' as const },
    };
    await resources.ensureConsumer(spec);
    await resources.ensureConsumer(spec);
    const jsm = await jetstreamManager(nc);
    let info = await jsm.consumers.info('ORDERS', spec.name);
    assert.equal(info.config.ack_wait, 30_000 * 1_000_000);
    assert.equal(info.config.filter_subject, 'orders.created');
    const created = info.created;

    await resources.ensureConsumer({ ...spec, ackWaitMs: 45_000, filterSubjects: ['orders.created', 'orders.paid'], maxAckPending: 128 });
    info = await jsm.consumers.info('ORDERS', spec.name);
    assert.equal(info.created, created, 'updated in place, not recreated');
    assert.equal(info.config.ack_wait, 45_000 * 1_000_000);
    assert.equal(info.config.max_ack_pending, 128);
    assert.deepEqual([...(info.config.filter_subjects ?? [])].sort(), ['orders.created', 'orders.paid']);
    assert.equal(info.config.metadata?.['ferry.dev/integration'], 'shop/orders');
    // A consumer created by an older operator with a server-side delivery limit gets none: the
    // runtime counts attempts itself, and a server limit would end redelivery silently.
    await resources.ensureConsumer({ ...spec, maxDeliver: -1 });
    info = await jsm.consumers.info('ORDERS', spec.name);
    assert.equal(info.config.max_deliver, -1);
    assert.equal(info.created, created);
  });

  it('starts a new consumer where startAt says: the beginning, new events only, or a time; an existing one keeps its place', async () => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'HISTORY', subjects: ['history.>'] });
    for (let i = 0; i < 3; i++) await js.publish('history.x', JSON.stringify({ old: i }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const cut = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < 2; i++) await js.publish('history.x', JSON.stringify({ recent: i }));
    const base = { stream: 'HISTORY', filterSubjects: ['history.x'], ackWaitMs: 30_000, maxDeliver: -1, maxAckPending: 8, metadata: {} };
    await resources.ensureConsumer({ ...base, name: 'from_beginning', startAt: { kind: 'beginning' } });
    await resources.ensureConsumer({ ...base, name: 'from_now', startAt: { kind: 'new' } });
    await resources.ensureConsumer({ ...base, name: 'from_time', startAt: { kind: 'time', timeMs: cut } });
    assert.equal((await jsm.consumers.info('HISTORY', 'from_beginning')).num_pending, 5);
    assert.equal((await jsm.consumers.info('HISTORY', 'from_now')).num_pending, 0);
    assert.equal((await jsm.consumers.info('HISTORY', 'from_time')).num_pending, 2);
    await js.publish('history.x', JSON.stringify({ later: 1 }));
    assert.equal((await jsm.consumers.info('HISTORY', 'from_now')).num_pending, 1, 'new events only');
    // Re-ensuring with another startAt never moves an existing consumer.
    await resources.ensureConsumer({ ...base, name: 'from_now', startAt: { kind: 'beginning' } });
    assert.equal((await jsm.consumers.info('HISTORY', 'from_now')).num_pending, 1);
  });

  it('deletes a consumer and keeps the messages', async () => {
    const js = jetstream(nc);
    for (let i = 0; i < 5; i++) await js.publish('orders.created', JSON.stringify({ i }));
    assert.equal(await resources.deleteConsumer('ORDERS', 'ferry_shop_orders'), true);
    assert.equal(await resources.deleteConsumer('ORDERS', 'ferry_shop_orders'), false);
    assert.equal(await resources.consumerSummary('ORDERS', 'ferry_shop_orders'), undefined);
    assert.equal(await resources.streamMessages('ORDERS'), 5);
  });

  it('provisions a fallback stream that drops a re-published message id', async () => {
    const spec = { name: 'FERRY_FALLBACK_shop_orders', subject: 'ferry.fallback.shop.orders', maxAgeMs: 14 * 86_400_000, duplicateWindowMs: 3_600_000 };
    await resources.ensureFallbackStream(spec);
    await resources.ensureFallbackStream(spec);
    const js = jetstream(nc);
    const first = await js.publish(spec.subject, 'x', { msgID: 'ORDERS:1' });
    const second = await js.publish(spec.subject, 'x', { msgID: 'ORDERS:1' });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(await resources.streamMessages(spec.name), 1);
    await resources.ensureFallbackStream({ ...spec, maxAgeMs: 7 * 86_400_000 });
    const info = await (await jetstreamManager(nc)).streams.info(spec.name);
    assert.equal(info.config.max_age, 7 * 86_400_000 * 1_000_000);
    assert.equal(info.state.messages, 1, 'an update keeps parked messages');
  });

  it('a consumer reader aborted while it is still setting up ends instead of waiting forever', async () => {
    await resources.ensureConsumer({
      stream: 'ORDERS',
      name: 'reader',
      filterSubjects: ['orders.quiet'],
      ackWaitMs: 30_000,
      maxDeliver: 5,
      maxAckPending: 8,
      metadata: {},
      startAt: { kind: 'new' },
    });
    for (let i = 0; i < 5; i++) {
      const ac = new AbortController();
      const reader = readConsumer({ nc, stream: 'ORDERS', consumer: 'reader', maxMessages: 8, clock: systemClock, logger: silentLogger() }, ac.signal);
      const next = reader.next();
      // Abort at once: the reader is between its consumer lookup and the consume call.
      ac.abort(new Error('stop'));
      const ended = await Promise.race([next.then((r) => r.done), new Promise((resolve) => {
          setTimeout(() => {
            resolve('hung');
          }, 5_000).unref();
        })]);
      assert.equal(ended, true, `round ${i}: the reader ended`);
    }
  });

  it('provisions KV buckets idempotently', async () => {
    await resources.ensureKvBucket({ name: 'ferry_integrations' });
    await resources.ensureKvBucket({ name: 'ferry_integrations' });
    const info = await (await jetstreamManager(nc)).streams.info('KV_ferry_integrations');
    assert.equal(info.config.max_msgs_per_subject, 1);
  });
});
