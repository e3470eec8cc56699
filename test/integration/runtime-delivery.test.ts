/**
 * The failure contract, row by row, end to end: the operator runs as a process, events go
 * through a real JetStream, targets are local fault-injecting servers that honour idempotency
 * keys. Each test asserts where every event ended, how many attempts it took and what the
 * target saw.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { EventsV1Api } from '@kubernetes/client-node';
import { faults, perKey, type FaultTarget } from '../support/fault-target.ts';
import { condition } from '../support/ferry-client.ts';
import {
  consumerState,
  createIntegration,
  drained,
  eventually,
  fallbackMessages,
  NS,
  publishEvents,
  runtimeSuite,
  SOURCE,
  type RuntimeEnv,
} from '../support/runtime-harness.ts';

describe('runtime: the failure contract', () => {
  const suite = runtimeSuite('rt-1');
  const target = (): Promise<FaultTarget> => suite.target();
  let r: RuntimeEnv;
  before(() => {
    r = suite.env();
  });

  it('row 1: 10,000 events are each delivered exactly once', async () => {
    const t = await target();
    await createIntegration(r, { credentials: t.auth, name: 'bulk', subject: 'events.bulk', url: `${t.url}/v1/invoices`, delivery: { concurrency: 64 } });
    const events = Array.from({ length: 10_000 }, (_, i) => ({ id: `evt-${i}`, amount: i }));
    await publishEvents(r, 'events.bulk', events);
    await eventually('all 10,000 applied', () => t.stats().applied >= 10_000 || undefined, 180_000);
    await drained(r, 'bulk');
    const stats = t.stats();
    assert.equal(stats.applied, 10_000);
    // Counted by the invoice in the body, not by the key under test.
    assert.equal(stats.identities, 10_000);
    assert.equal(stats.duplicates, 0);
    assert.equal(stats.distinctKeys, 10_000);
    assert.equal(stats.unauthorized, 0, 'every request carried the target\'s bearer token');
    // The mapping transform ran: the target got the mapped shape, keyed by the event's Nats-Msg-Id
    // scoped by the Integration.
    const sample = t.applied.find((a) => a.identity === 'evt-42');
    assert.equal(sample?.key, `${NS}/bulk/evt-42`);
    assert.deepEqual(JSON.parse(sample?.body ?? '{}'), { externalId: 'evt-42', total: 42 });
    assert.equal((await fallbackMessages(r, 'bulk')).length, 0);
    const obj = await r.ferry.waitFor('integrations', NS, 'bulk', (o) => (o.status?.stats as { delivered?: number } | undefined)?.delivered === 10_000, 30_000);
    assert.equal(obj.status?.fallbackPending, 0);
  });

  it('row 2: 5xx three times then 201 → delivered once after 3 retries, gaps growing within the jitter bounds', async () => {
    const t = await target();
    t.script(perKey(faults.status(500), faults.status(502), faults.status(503)));
    await createIntegration(r, {
      credentials: t.auth,
      name: 'flaky',
      subject: 'events.flaky',
      url: `${t.url}/v1/invoices`,
      // Equal jitter: delay n is in [c_n/2, c_n] with c_n = 400ms·2^(n-1), so growth is assertable.
      delivery: { backoff: { initial: '400ms', max: '10s', multiplier: 2, jitter: 'Equal' } },
    });
    await publishEvents(r, 'events.flaky', [{ id: 'flaky-1', amount: 1 }]);
    await eventually('applied once', () => t.stats().applied === 1 || undefined, 30_000);
    await drained(r, 'flaky');
    const attempts = t.requestsOf('flaky-1');
    assert.deepEqual(attempts.map((q) => q.outcome), ['fault', 'fault', 'fault', 'applied']);
    const gaps = attempts.slice(1).map((q, i) => q.receivedAt - (attempts[i]?.receivedAt ?? 0));
    gaps.forEach((gap, i) => {
      const ceiling = 400 * 2 ** i;
      // Lower bound from the jitter; upper bound plus scheduling and delivery overhead.
      assert.ok(gap >= ceiling / 2 - 50, `gap ${i + 1} = ${gap} ms ≥ ${ceiling / 2} ms`);
      assert.ok(gap <= ceiling + 1_500, `gap ${i + 1} = ${gap} ms ≤ ${ceiling} ms + overhead`);
    });
    assert.ok((gaps[2] ?? 0) > (gaps[0] ?? 0), `gaps grow: ${gaps.join(', ')}`);
    assert.equal(t.appliedCount('flaky-1'), 1);
    assert.equal((await fallbackMessages(r, 'flaky')).length, 0);
  });

  it('row 3: always 503 → parked after maxAttempts with reason exhausted, every header set, payload byte-identical', async () => {
    const t = await target();
    t.script(() => faults.status(503));
    await createIntegration(r, { credentials: t.auth, name: 'down', subject: 'events.down', url: `${t.url}/v1/invoices`, delivery: { maxAttempts: 3, backoff: { initial: '100ms', max: '400ms', multiplier: 2, jitter: 'Full' }, circuitBreaker: { failures: 1000, window: '30s', openFor: '60s' } } });
    const payload = '{"id":"down-1","amount":12.5,  "note":"spacing kept"}';
    const ack = await r.js.publish('events.down', payload, { msgID: 'down-1' });
    const parked = await eventually('parked', async () => (await fallbackMessages(r, 'down'))[0], 30_000);
    assert.equal(Buffer.from(parked.data).toString(), payload);
    const h = (name: string): string | undefined => parked.header.get(name) || undefined;
    assert.equal(h('Ferry-Integration'), `${NS}/down`);
    assert.equal(h('Ferry-Reason'), 'exhausted');
    assert.match(h('Ferry-Error') ?? '', /gave up after 3 attempts; last: HTTP 503/);
    assert.equal(h('Ferry-Http-Status'), '503');
    assert.equal(h('Ferry-Attempts'), '3');
    assert.ok(h('Ferry-First-Attempt') && h('Ferry-Last-Attempt'));
    assert.equal(h('Ferry-Source-Stream'), SOURCE);
    assert.equal(h('Ferry-Source-Sequence'), String(ack.seq));
    assert.equal(h('Ferry-Source-Subject'), 'events.down');
    assert.equal(h('Ferry-Idempotency-Key'), `${NS}/down/down-1`);
    assert.equal(h('Ferry-Source-Msg-Id'), 'down-1');
    assert.equal(t.requestsOf('down-1').length, 3, 'Ferry-Attempts is the number of requests the target saw');
    await drained(r, 'down');
    // Counters reach status a flush (1 s) and a poll (2 s) later than the stream count may.
    const obj = await r.ferry.waitFor('integrations', NS, 'down', (o) => o.status?.fallbackPending === 1 && (o.status.stats as { fallback?: number } | undefined)?.fallback === 1, 20_000);
    assert.equal((obj.status?.stats as { lastError?: { reason?: string } }).lastError?.reason, 'exhausted');
  });

  it('row 5: a 400 with a JSON error body → parked at once, reason rejected, status and body kept', async () => {
    const t = await target();
    const body = JSON.stringify({ error: { type: 'invalid_request_error', message: 'customer is required' } });
    t.script(() => faults.status(400, { 'content-type': 'application/json' }, body));
    await createIntegration(r, { credentials: t.auth, name: 'rejected', subject: 'events.rejected', url: `${t.url}/v1/invoices` });
    await publishEvents(r, 'events.rejected', [{ id: 'rej-1', amount: 5 }]);
    const parked = await eventually('parked', async () => (await fallbackMessages(r, 'rejected'))[0], 20_000);
    assert.equal(parked.header.get('Ferry-Reason'), 'rejected');
    assert.equal(parked.header.get('Ferry-Http-Status'), '400');
    assert.equal(parked.header.get('Ferry-Attempts'), '1');
    assert.equal(parked.header.get('Ferry-Response-Body'), body);
    assert.equal(t.requestsOf('rej-1').length, 1, 'no retry for a 400');
  });

  it('row 7: events breaking the schema are parked with ajv\'s message; valid neighbours are delivered', async () => {
    const t = await target();
    await createIntegration(r, { credentials: t.auth, name: 'schema', subject: 'events.schema', url: `${t.url}/v1/invoices` });
    await publishEvents(r, 'events.schema', [
      { id: 'ok-1', amount: 1 },
      { id: 'bad-1', amount: 'lots' },
      { id: 'ok-2', amount: 2 },
    ]);
    await r.js.publish('events.schema', 'not json at all', { msgID: 'bad-2' });
    await eventually('two delivered', () => t.stats().applied === 2 || undefined, 20_000);
    const parked = await eventually('two parked', async () => {
      const m = await fallbackMessages(r, 'schema');
      return m.length === 2 ? m : undefined;
    }, 20_000);
    assert.deepEqual(t.applied.map((a) => a.identity).sort(), ['ok-1', 'ok-2']);
    const bad1 = parked.find((m) => Buffer.from(m.data).toString().includes('bad-1'));
    assert.equal(bad1?.header.get('Ferry-Reason'), 'invalid');
    assert.match(bad1.header.get('Ferry-Error'), /\/amount: must be number/);
    const bad2 = parked.find((m) => Buffer.from(m.data).toString() === 'not json at all');
    assert.equal(bad2?.header.get('Ferry-Reason'), 'invalid');
    assert.match(bad2.header.get('Ferry-Error'), /JSON/);
    assert.equal(t.requests.filter((q) => q.body.includes('bad-1')).length, 0, 'an invalid event never reaches the target');
  });

  it('row 10: a 2xx breaking responseSchema → parked with reason contract, Degraded=True (ContractDrift)', async () => {
    const t = await target();
    t.script(() => faults.respond(200, JSON.stringify({ status: 'ok' }), { 'content-type': 'application/json' }));
    await createIntegration(r, {
      credentials: t.auth,
      name: 'drift',
      subject: 'events.drift',
      url: `${t.url}/v1/invoices`,
      target: { responseSchema: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } },
    });
    await publishEvents(r, 'events.drift', [{ id: 'drift-1', amount: 3 }]);
    const parked = await eventually('parked', async () => (await fallbackMessages(r, 'drift'))[0], 20_000);
    assert.equal(parked.header.get('Ferry-Reason'), 'contract');
    assert.match(parked.header.get('Ferry-Error'), /responseSchema/);
    const obj = await r.ferry.waitFor('integrations', NS, 'drift', (o) => condition(o, 'Degraded')?.status === 'True', 20_000);
    assert.equal(condition(obj, 'Degraded')?.reason, 'ContractDrift');
    assert.equal(condition(obj, 'Ready')?.status, 'True', 'still delivering: drift degrades, it does not stop');
    // Events are written asynchronously by the leader.
    const eventsApi = r.env.kubeConfig.makeApiClient(EventsV1Api);
    for (const reason of ['ContractDrift', 'FallbackGrowing']) {
      await eventually(`Warning Event ${reason}`, async () =>
        (await eventsApi.listNamespacedEvent({ namespace: NS })).items.some((e) => e.regarding?.name === 'drift' && e.type === 'Warning' && e.reason === reason) || undefined,
      10_000);
    }
  });

  it('row 11: link-local and private targets are refused, with a clear message, and nothing is sent', async () => {
    for (const [name, url] of [
      ['metadata', 'http://169.254.169.254/latest/meta-data/'],
      ['private', 'http://10.0.0.1/v1/invoices'],
    ] as const) {
      await createIntegration(r, { name, subject: `events.${name}`, url, delivery: { maxAttempts: 2 } });
      await publishEvents(r, `events.${name}`, [{ id: `${name}-1`, amount: 1 }]);
      const parked = await eventually(`${name} parked`, async () => (await fallbackMessages(r, name))[0], 20_000);
      assert.equal(parked.header.get('Ferry-Reason'), 'rejected');
      assert.match(parked.header.get('Ferry-Error'), /denied/);
      assert.equal(parked.header.get('Ferry-Attempts'), '1', 'a refused target is not retried');
      const obj = await r.ferry.waitFor('integrations', NS, name, (o) => (o.status?.stats as { lastError?: unknown } | undefined)?.lastError !== undefined, 20_000);
      assert.match(JSON.stringify(obj.status?.stats), /denied/);
    }
  });

  it('leaves no event unaccounted for in the consumers', async () => {
    for (const name of ['bulk', 'flaky', 'down', 'rejected', 'schema', 'drift']) {
      const s = await consumerState(r, name);
      assert.deepEqual({ pending: s.pending, ackPending: s.ackPending }, { pending: 0, ackPending: 0 }, name);
    }
  });
});
