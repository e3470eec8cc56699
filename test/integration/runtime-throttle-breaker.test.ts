/**
 * Throttling and the circuit breaker, end to end: a 429 holds every attempt to the target for
 * its Retry-After and lowers the shared rate without parking anything; a target that is down
 * opens the circuit, which pauses the consumer on the server (no requests, no burned attempts)
 * until a half-open probe succeeds.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { EventsV1Api } from '@kubernetes/client-node';
import { faults, type FaultTarget } from '../support/fault-target.ts';
import { condition } from '../support/ferry-client.ts';
import {
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

describe('runtime: throttling and the circuit breaker', () => {
  const suite = runtimeSuite('rt-tb');
  const target = (): Promise<FaultTarget> => suite.target();
  let r: RuntimeEnv;
  before(() => {
    r = suite.env();
  });

  it('row 4: 429 with Retry-After: 2 → no attempt within 2 s, the shared rate lowered, nothing parked', async () => {
    const t = await target();
    let throttledAt = 0;
    t.script((q) => {
      if (q.index === 5) {
        throttledAt = q.receivedAt;
        return faults.throttle(2);
      }
      return undefined;
    });
    await createIntegration(r, {
      credentials: t.auth,
      name: 'throttled',
      subject: 'events.throttled',
      url: `${t.url}/v1/invoices`,
      delivery: { concurrency: 1, rateLimit: { perSecond: 20, burst: 1 }, retryAfterMax: '10s' },
    });
    await publishEvents(r, 'events.throttled', Array.from({ length: 20 }, (_, i) => ({ id: `thr-${i}`, amount: i })));
    await eventually('all 20 applied', () => t.stats().applied === 20 || undefined, 60_000);
    await drained(r, 'throttled');
    assert.ok(throttledAt > 0);
    const after429 = t.requests.filter((q) => q.receivedAt > throttledAt);
    assert.ok(after429.length > 0);
    const first = Math.min(...after429.map((q) => q.receivedAt));
    assert.ok(first - throttledAt >= 2_000 - 20, `next attempt ${first - throttledAt} ms after the 429 (Retry-After: 2)`);
    assert.equal((await fallbackMessages(r, 'throttled')).length, 0, '429 is not a reason to park');
    assert.equal(t.stats().duplicates, 0);
    const obj = await r.ferry.waitFor('integrations', NS, 'throttled', (o) => o.status?.throttle !== undefined, 20_000);
    const throttle = obj.status?.throttle as { perSecond?: number; limitedUntil?: string };
    assert.ok((throttle.perSecond ?? 20) < 20, `shared rate lowered to ${String(throttle.perSecond)}/s`);
    // Status times have second precision.
    assert.ok(Date.parse(throttle.limitedUntil ?? '') >= throttledAt + 1_000);
    assert.equal(condition(obj, 'Degraded')?.status, 'False', 'throttling is not a breaker failure');
    const metrics = await r.operators[0]!.metrics();
    assert.match(metrics, /ferry_throttled_total\{namespace="flows",integration="throttled"\} 1\b/);
  });

  it('row 6: target down → circuit opens after `failures`; while open zero requests and no delivery-count growth; a probe closes it; all delivered', async () => {
    const t = await target();
    let down = true;
    t.script(() => (down ? faults.status(503) : undefined));
    await createIntegration(r, {
      credentials: t.auth,
      name: 'breaker',
      subject: 'events.breaker',
      url: `${t.url}/v1/invoices`,
      delivery: {
        concurrency: 4,
        maxAttempts: 50,
        backoff: { initial: '100ms', max: '200ms', multiplier: 2, jitter: 'None' },
        circuitBreaker: { failures: 3, window: '30s', openFor: '6s' },
      },
    });
    await publishEvents(r, 'events.breaker', Array.from({ length: 10 }, (_, i) => ({ id: `brk-${i}`, amount: i })));

    const open = await r.ferry.waitFor('integrations', NS, 'breaker', (o) => (o.status?.circuit as { state?: string } | undefined)?.state === 'Open', 20_000);
    assert.equal(condition(open, 'Degraded')?.status, 'True');
    assert.equal(condition(open, 'Degraded')?.reason, 'CircuitOpen');
    const consumer = await r.jsm.consumers.info(SOURCE, `ferry_${NS}_breaker`);
    assert.equal(consumer.paused, true, 'the consumer is paused on the server');

    // While open: no request reaches the target, and no event is redelivered (no attempt burned).
    const requestsAtOpen = t.requests.length;
    const redeliveredAtOpen = consumer.num_redelivered;
    const deliveredSeqAtOpen = consumer.delivered.consumer_seq;
    // Watch until just before the open period ends (status times have second precision: floor).
    const openUntil = Date.parse((open.status?.circuit as { openUntil?: string }).openUntil ?? '');
    assert.ok(openUntil > Date.now(), 'status says until when the circuit stays open');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, openUntil - Date.now() - 300)));
    assert.equal(
      t.requests.length,
      requestsAtOpen,
      `zero requests while open; log: ${JSON.stringify(r.operators[0]!.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('circuit')))} requests: ${JSON.stringify(t.requests.map((q) => [q.key, q.receivedAt]))}`,
    );
    const during = await r.jsm.consumers.info(SOURCE, `ferry_${NS}_breaker`);
    assert.equal(during.num_redelivered, redeliveredAtOpen);
    assert.equal(during.delivered.consumer_seq, deliveredSeqAtOpen, 'no deliveries while open');

    down = false;
    await eventually('all 10 applied', () => t.stats().applied === 10 || undefined, 30_000);
    await drained(r, 'breaker');
    // The circuit closed through one half-open probe: exactly one request reached the target
    // between the last HalfOpen transition and the close.
    const transitions = r.operators[0]!.logs.filter((l) => l.integration === 'breaker' && typeof l.msg === 'string' && l.msg.startsWith('circuit '));
    const closedAt = Date.parse(String(transitions.findLast((l) => l.to === 'Closed')?.time));
    const halfOpenAt = Date.parse(String(transitions.findLast((l) => l.to === 'HalfOpen')?.time));
    assert.equal(transitions.findLast((l) => l.to === 'Closed')?.reason, 'probe-succeeded');
    const probes = t.requests.filter((q) => q.receivedAt >= halfOpenAt && q.receivedAt <= closedAt);
    assert.equal(probes.length, 1, `one probe while half-open, saw ${probes.length}`);
    const closed = await r.ferry.waitFor('integrations', NS, 'breaker', (o) => (o.status?.circuit as { state?: string } | undefined)?.state === 'Closed', 20_000);
    assert.equal(condition(closed, 'Degraded')?.status, 'False');
    assert.equal((await fallbackMessages(r, 'breaker')).length, 0, 'the open circuit flooded nothing into the fallback stream');
    assert.equal(t.stats().duplicates, 0);
    const events = await r.env.kubeConfig.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: NS });
    const opened = events.items.find((e) => e.regarding?.name === 'breaker' && e.reason === 'CircuitOpen');
    assert.equal(opened?.type, 'Warning');
    const metrics = await r.operators[0]!.metrics();
    assert.match(metrics, /ferry_circuit_breaker_state\{namespace="flows",integration="breaker",state="Closed"\} 1\b/);
  });
});
