/**
 * Delivery correctness that the failure-contract rows cannot see: keys shared between
 * Integrations, events that wait longer than ack_wait, attempts and maxElapsed counted per event,
 * a fallback stream that refuses events, and where a new Integration starts in its stream.
 * Effects are counted by the business identity in the body, never by the key under test.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { EventsV1Api } from '@kubernetes/client-node';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { faults, perKey } from '../support/fault-target.ts';
import { condition } from '../support/ferry-client.ts';
import {
  consumerState,
  createIntegration,
  drained,
  eventually,
  fallbackMessages,
  NS,
  publishEvents,
  putSecret,
  runtimeSuite,
  SOURCE,
  type RuntimeEnv,
} from '../support/runtime-harness.ts';

describe('runtime: delivery correctness', () => {
  const suite = runtimeSuite('rt-correct');
  let r: RuntimeEnv;
  before(() => {
    r = suite.env();
  });

  it('two Integrations on one stream calling one API with default keys: each applies every event, neither is answered with the other\'s replay', async () => {
    // One API, two endpoints; it honours Idempotency-Key across endpoints, as Stripe does.
    const t = await suite.target({ identify: (q) => `${q.path}:${(JSON.parse(q.body) as { externalId?: string }).externalId ?? ''}` });
    for (const [name, path] of [['to-invoices', '/v1/invoices'], ['to-credits', '/v1/credits']] as const) {
      await createIntegration(r, { credentials: t.auth, name, subject: 'events.shared-keys', url: `${t.url}${path}` });
    }
    const ids = Array.from({ length: 20 }, (_, i) => `sk-${i}`);
    await publishEvents(r, 'events.shared-keys', ids.map((id, i) => ({ id, amount: i })));
    await eventually('both applied every event', () => t.stats().applied === 40 || undefined, 30_000);
    await drained(r, 'to-invoices');
    await drained(r, 'to-credits');
    for (const id of ids) {
      assert.equal(t.appliedCount(`/v1/invoices:${id}`), 1, id);
      assert.equal(t.appliedCount(`/v1/credits:${id}`), 1, id);
    }
    const s = t.stats();
    assert.equal(s.replays, 0, 'no request was answered with the other Integration\'s replay');
    assert.equal(t.requests.filter((q) => q.outcome === 'mismatch').length, 0, 'and none with a 422');
    assert.equal(s.distinctKeys, 40, 'two keys per event: one per Integration');
  });

  it('events that wait longer than ack_wait (an open circuit) are kept: no second copy is sent, nothing is parked, attempts are right', async () => {
    const t = await suite.target();
    let down = true;
    t.script(() => (down ? faults.status(503) : faults.slow(30)));
    const name = 'waiting';
    // ack_wait is the target timeout + 30 s = 31 s; the circuit stays open for 40 s.
    await createIntegration(r, {
      credentials: t.auth,
      name,
      subject: `events.${name}`,
      url: `${t.url}/v1/invoices`,
      target: { timeout: '1s' },
      delivery: { concurrency: 2, maxAttempts: 5, backoff: { initial: '100ms', max: '200ms', multiplier: 2, jitter: 'None' }, circuitBreaker: { failures: 2, window: '30s', openFor: '40s' } },
    });
    const ids = Array.from({ length: 30 }, (_, i) => `w-${i}`);
    await publishEvents(r, `events.${name}`, ids.map((id, i) => ({ id, amount: i })));
    await r.ferry.waitFor('integrations', NS, name, (o) => (o.status?.circuit as { state?: string } | undefined)?.state === 'Open', 20_000);
    down = false;
    // Every event waits — in this replica's hands — past ack_wait before the first probe.
    await eventually('all applied after the circuit closed', () => t.stats().identities === ids.length || undefined, 90_000);
    await drained(r, name, 30_000);
    const s = t.stats();
    assert.equal(s.conflicts, 0, 'no two copies of one event were ever in flight at once (409)');
    assert.equal(s.duplicates, 0);
    assert.equal((await fallbackMessages(r, name)).length, 0, 'nothing parked');
    // Attempts: each event was sent at most once per 503 it got, plus its success.
    for (const id of ids) {
      const sent = t.requestsOf(id);
      assert.ok(sent.length <= 3, `${id} sent ${sent.length} times`);
      assert.equal(sent.filter((q) => q.outcome === 'applied').length, 1, id);
    }
  });

  it('events that wait for a slot longer than ack_wait (a throttle hold, consumer not paused) are kept: JetStream never hands out a second copy', async () => {
    const t = await suite.target();
    // One 429 with a Retry-After longer than ack_wait (1 s + 30 s): every attempt is held for 40 s
    // while the consumer keeps running, so the server would redeliver whatever is not kept alive.
    let throttledOnce = false;
    t.script(() => {
      if (throttledOnce) return undefined;
      throttledOnce = true;
      return faults.throttle(40);
    });
    const name = 'held';
    await createIntegration(r, {
      credentials: t.auth,
      name,
      subject: `events.${name}`,
      url: `${t.url}/v1/invoices`,
      target: { timeout: '1s' },
      delivery: { concurrency: 2, maxAttempts: 3, retryAfterMax: '60s', circuitBreaker: { failures: 1000 } },
    });
    const ids = Array.from({ length: 20 }, (_, i) => `held-${i}`);
    await publishEvents(r, `events.${name}`, ids.map((id, i) => ({ id, amount: i })));
    await eventually('all applied after the hold', () => t.stats().identities === ids.length || undefined, 90_000);
    await drained(r, name, 30_000);
    const info = await r.jsm.consumers.info(SOURCE, `ferry_${NS}_${name}`);
    assert.equal(t.stats().conflicts, 0, 'no two copies of one event in flight at once (409)');
    assert.equal(t.stats().replays, 0, 'no second copy sent after the first was applied');
    assert.equal(t.requests.length, ids.length + 1, `one request per event plus the throttled one: ${t.requests.length}`);
    assert.equal((await fallbackMessages(r, name)).length, 0, 'nothing parked');
    // Only the throttled event was handed back; nothing expired while this replica held it.
    assert.equal(info.delivered.consumer_seq, ids.length + 1, `deliveries by the server: ${info.delivered.consumer_seq}`);
  });

  it('maxElapsed counts from the first attempt: a backlog older than maxElapsed is retried, not parked', async () => {
    const t = await suite.target();
    t.script(perKey(faults.status(503)));
    const name = 'backlog';
    await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/invoices`, delivery: { maxElapsed: '2s', circuitBreaker: { failures: 1000 } } });
    // Ready says the spec is sound; the runtime starts the pipeline on its next pass (at most
    // 200 ms later). Suspended before that, it would never pull and never log that it stopped.
    await r.operators[0]!.waitForLog((l) => l.msg === 'pipeline started' && l.integration === `${NS}/${name}`);
    await r.ferry.editSpec('integrations', NS, name, (spec) => {
      spec.suspend = true;
    });
    // Published once the pipeline no longer pulls: they wait in the stream, growing old.
    await r.operators[0]!.waitForLog((l) => l.msg === 'stopped pulling; unstarted events handed back' && l.integration === name);
    const ids = Array.from({ length: 5 }, (_, i) => `old-${i}`);
    await publishEvents(r, `events.${name}`, ids.map((id, i) => ({ id, amount: i })));
    // The events grow older than maxElapsed while suspended.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await r.ferry.editSpec('integrations', NS, name, (spec) => {
      spec.suspend = false;
    });
    await eventually('all delivered on their second attempt', () => t.stats().identities === ids.length || undefined, 30_000);
    await drained(r, name);
    assert.equal((await fallbackMessages(r, name)).length, 0, 'none parked as exhausted');
    for (const id of ids) assert.deepEqual(t.requestsOf(id).map((q) => q.outcome), ['fault', 'applied'], id);
  });

  it('Ferry-Attempts equals the HTTP attempts made, whatever redeliveries a shutdown caused', async () => {
    const t = await suite.target();
    t.script(() => faults.slow(400, faults.status(503)));
    const name = 'counted';
    await createIntegration(r, {
      credentials: t.auth,
      name,
      subject: `events.${name}`,
      url: `${t.url}/v1/invoices`,
      delivery: { concurrency: 1, maxAttempts: 2, backoff: { initial: '100ms', max: '100ms', multiplier: 1, jitter: 'None' }, circuitBreaker: { failures: 1000 } },
    });
    const ids = Array.from({ length: 6 }, (_, i) => `c-${i}`);
    await publishEvents(r, `events.${name}`, ids.map((id, i) => ({ id, amount: i })));
    await eventually('attempts under way', () => t.requests.length >= 2 || undefined, 20_000);
    // A restart hands the waiting events back: redeliveries that are no attempt.
    const op = r.operators[0]!;
    await op.stop();
    r.operators.splice(r.operators.indexOf(op), 1);
    await r.startOperator('rt-correct-2');
    const parked = await eventually('all parked as exhausted', async () => {
      const m = await fallbackMessages(r, name);
      return m.length === ids.length ? m : undefined;
    }, 60_000);
    for (const m of parked) {
      const id = (JSON.parse(Buffer.from(m.data).toString()) as { id: string }).id;
      assert.equal(m.header.get('Ferry-Reason'), 'exhausted', id);
      assert.equal(m.header.get('Ferry-Attempts'), String(t.requestsOf(id).length), `${id}: Ferry-Attempts is what the target saw`);
      assert.equal(t.requestsOf(id).length, 2, `${id}: maxAttempts HTTP attempts, none lost to the restart`);
    }
    const info = await r.jsm.consumers.info(SOURCE, `ferry_${NS}_${name}`);
    assert.ok(info.num_redelivered > 0 || info.delivered.consumer_seq > ids.length * 2, 'the restart did cause redeliveries');
  });

  it('a fallback stream that refuses events (full): they stay in the source, Degraded says so, and they are parked once it takes them again; server-interpreted headers never reach it', async () => {
    const t = await suite.target();
    const name = 'nofallback';
    await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/invoices` });
    const info = await r.jsm.consumers.info(SOURCE, `ferry_${NS}_${name}`);
    assert.equal(info.config.max_deliver, -1, 'JetStream never ends redelivery silently');
    // The fallback stream is full (an operator capped it); with discard-new it refuses more.
    const fallback = `FERRY_FALLBACK_${NS}_${name}`;
    const config = (await r.jsm.streams.info(fallback)).config;
    await r.jsm.streams.update(fallback, { ...config, max_msgs: 1 });
    await r.js.publish(`ferry.fallback.${NS}.${name}`, 'an earlier parked event');
    // Invalid events, one published with `expect` headers that the fallback stream would refuse.
    const last = await r.js.publish(`events.${name}`, JSON.stringify({ id: 'bad-0', amount: 'x' }));
    const h = natsHeaders();
    h.set('Nats-Msg-Id', 'bad-1');
    await r.js.publish(`events.${name}`, JSON.stringify({ id: 'bad-1', amount: 'y' }), { headers: h, expect: { lastSubjectSequence: last.seq } });
    await publishEvents(r, `events.${name}`, [{ id: 'good-1', amount: 1 }]);

    const degraded = await r.ferry.waitFor('integrations', NS, name, (o) => condition(o, 'Degraded')?.reason === 'FallbackUnavailable', 30_000);
    assert.equal(condition(degraded, 'Degraded')?.status, 'True');
    assert.match(condition(degraded, 'Degraded')?.message ?? '', /stay in the source stream/);
    const eventsApi = r.env.kubeConfig.makeApiClient(EventsV1Api);
    await eventually('a Warning Event', async () => (await eventsApi.listNamespacedEvent({ namespace: NS })).items.some((e) => e.regarding?.name === name && e.type === 'Warning' && e.reason === 'FallbackUnavailable') || undefined, 20_000);
    assert.equal(t.appliedCount('good-1'), 1, 'delivery of valid events goes on');
    // Nothing is lost or silently dropped: both wait in the source stream, unacknowledged.
    const waiting = await consumerState(r, name);
    assert.equal(waiting.pending + waiting.ackPending, 2, JSON.stringify(waiting));

    await r.jsm.streams.update(fallback, { ...config, max_msgs: -1 });
    const parked = await eventually('both parked once the stream takes them', async () => {
      const m = await fallbackMessages(r, name);
      return m.length === 3 ? m : undefined;
    }, 90_000);
    const withExpect = parked.find((m) => Buffer.from(m.data).toString().includes('bad-1'));
    assert.ok(withExpect);
    assert.equal(withExpect.header.get('Nats-Expected-Last-Subject-Sequence'), '', 'server-interpreted headers are not copied');
    assert.equal(withExpect.header.get('Ferry-Source-Msg-Id'), 'bad-1');
    assert.equal(withExpect.header.get('Ferry-Reason'), 'invalid');
    await drained(r, name);
    await r.ferry.waitFor('integrations', NS, name, (o) => condition(o, 'Degraded')?.status === 'False', 30_000);
  });

  it('a new Integration starts with new events (startAt default), a re-created one does not replay its stream, startAt: Beginning does', async () => {
    const t = await suite.target();
    await publishEvents(r, 'events.history', [{ id: 'h-old-1', amount: 1 }, { id: 'h-old-2', amount: 2 }]);
    await createIntegration(r, { credentials: t.auth, name: 'history', subject: 'events.history', url: `${t.url}/v1/invoices` });
    await publishEvents(r, 'events.history', [{ id: 'h-new-1', amount: 3 }]);
    await eventually('the new event delivered', () => t.appliedCount('h-new-1') === 1 || undefined, 20_000);
    await drained(r, 'history');
    assert.equal(t.appliedCount('h-old-1'), 0, 'events from before the Integration existed are not sent');

    await r.ferry.delete('integrations', NS, 'history');
    await r.ferry.waitGone('integrations', NS, 'history');
    await createIntegration(r, { credentials: t.auth, name: 'history', subject: 'events.history', url: `${t.url}/v1/invoices` });
    await publishEvents(r, 'events.history', [{ id: 'h-new-2', amount: 4 }]);
    await eventually('the next new event delivered', () => t.appliedCount('h-new-2') === 1 || undefined, 20_000);
    await drained(r, 'history');
    assert.equal(t.appliedCount('h-new-1'), 1);
    assert.equal(t.requestsOf('h-new-1').length, 1, 'delete and re-create did not replay the stream (not even as replays)');
    assert.equal(t.stats().replays, 0);
    assert.equal(t.stats().duplicates, 0);

    const u = await suite.target();
    await putSecret(r, 'history-all-credentials', { token: u.auth?.kind === 'bearer' ? u.auth.token : '' });
    await r.ferry.create('integrations', NS, {
      kind: 'Integration',
      metadata: { name: 'history-all' },
      spec: { source: { stream: SOURCE, subjects: ['events.history'], startAt: 'Beginning' }, target: { url: `${u.url}/v1/invoices`, auth: { bearer: { secretKeyRef: { name: 'history-all-credentials', key: 'token' } } } } },
    });
    await eventually('the whole stream delivered', () => u.stats().identities === 4 || undefined, 30_000);
    // No transform: the event payload is the body, as published.
    assert.deepEqual(JSON.parse(u.applied.find((a) => a.identity === 'h-old-1')?.body ?? '{}'), { id: 'h-old-1', amount: 1 });
  });
});
