/**
 * The delivery-time objective and escalations, end to end with the operator as a process: a slow
 * target makes events late → Degraded=True (SlaMissed) and one Warning Event, cleared once the
 * target is fast again; a circuit that keeps opening and a fallback stream that keeps growing
 * each give one Warning Event that says what to do, not one per transition or per event.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { EventsV1Api, type EventsV1Event } from '@kubernetes/client-node';
import { faults } from '../support/fault-target.ts';
import { condition } from '../support/ferry-client.ts';
import { createIntegration, drained, eventually, fallbackMessages, NS, publishEvents, runtimeSuite, type RuntimeEnv } from '../support/runtime-harness.ts';

describe('runtime: SLA and escalation', () => {
  const suite = runtimeSuite('rt-sla');
  let r: RuntimeEnv;
  before(() => {
    r = suite.env();
  });

  async function warnings(name: string, reason: string): Promise<EventsV1Event[]> {
    const events = await r.env.kubeConfig.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: NS });
    return events.items.filter((e) => e.regarding?.name === name && e.type === 'Warning' && e.reason === reason);
  }

  /** How many times an Event was observed: 1, or its series count. */
  const observed = (e: EventsV1Event): number => e.series?.count ?? 1;

  it('a slow target makes events late → Degraded=True (SlaMissed) and one Warning Event; fast again → cleared', async () => {
    const t = await suite.target();
    let slow = true;
    t.script(() => (slow ? faults.slow(1_000) : undefined));
    await createIntegration(r, {
      credentials: t.auth,
      name: 'late',
      subject: 'events.late',
      url: `${t.url}/v1/invoices`,
      delivery: { concurrency: 4 },
      sla: { deliverWithin: '400ms', window: '10s', maxLatePercent: 10 },
    });
    // The leader measures from its first look at the counters: wait for it before publishing.
    await r.ferry.waitFor('integrations', NS, 'late', (o) => o.status?.sla !== undefined, 20_000);
    await publishEvents(r, 'events.late', Array.from({ length: 8 }, (_, i) => ({ id: `late-${i}`, amount: i })));
    const degraded = await r.ferry.waitFor('integrations', NS, 'late', (o) => condition(o, 'Degraded')?.reason === 'SlaMissed', 30_000);
    assert.equal(condition(degraded, 'Degraded')?.status, 'True');
    assert.match(condition(degraded, 'Degraded')?.message ?? '', /SLA missed over the last 10s: .*deliverWithin 0.4s/);
    assert.equal(condition(degraded, 'Ready')?.status, 'True', 'late, not stopped');
    await eventually('all 8 applied', () => t.stats().applied === 8 || undefined, 30_000);
    await drained(r, 'late');
    const figures = await r.ferry.waitFor('integrations', NS, 'late', (o) => {
      const s = o.status?.sla as { late?: number; oldestPendingTime?: string } | undefined;
      return s?.late === 8 && s.oldestPendingTime === undefined;
    }, 20_000);
    assert.deepEqual(figures.status?.sla, { window: '10s', total: 8, late: 8 }, 'every event late, none pending');
    // More late events while it lasts: still one Warning Event.
    await publishEvents(r, 'events.late', Array.from({ length: 4 }, (_, i) => ({ id: `late-more-${i}`, amount: i })));
    await eventually('12 applied', () => t.stats().applied === 12 || undefined, 30_000);
    await drained(r, 'late');

    slow = false;
    await publishEvents(r, 'events.late', Array.from({ length: 4 }, (_, i) => ({ id: `fast-${i}`, amount: i })));
    await eventually('16 applied', () => t.stats().applied === 16 || undefined, 30_000);
    // The late events leave the 10 s window; the fast ones met the SLA.
    const healed = await r.ferry.waitFor('integrations', NS, 'late', (o) => condition(o, 'Degraded')?.status === 'False', 30_000);
    assert.equal(condition(healed, 'Degraded')?.reason, 'Healthy');
    const sla = await warnings('late', 'SlaMissed');
    assert.equal(sla.length, 1, `one SlaMissed Warning, saw ${JSON.stringify(sla.map((e) => e.note))}`);
    assert.equal(observed(sla[0]!), 1);
    assert.match(sla[0]!.note ?? '', /finished later than deliverWithin 0.4s|oldest event waiting in the source stream/);
    assert.match(sla[0]!.note ?? '', /look at the circuit, the target's response times/);
    const metrics = await r.operators[0]!.metrics();
    const count = (result: string): number => Number(new RegExp(`ferry_sla_events_total\\{namespace="flows",integration="late",result="${result}"\\} (\\d+)`).exec(metrics)?.[1] ?? -1);
    // The fast events meet 400 ms unless the machine is very loaded: counted either way.
    assert.ok(count('missed') >= 12, `missed: ${count('missed')}`);
    assert.equal(count('missed') + count('met'), 16, 'every event counted once');
    assert.equal(t.stats().duplicates, 0);
  });

  it('an event stuck in delivery breaks the SLA while it waits, before any event has finished', async () => {
    const t = await suite.target();
    t.script(() => faults.slow(6_000));
    await createIntegration(r, {
      credentials: t.auth,
      name: 'stuck',
      subject: 'events.stuck',
      url: `${t.url}/v1/invoices`,
      target: { timeout: '10s' },
      delivery: { concurrency: 1 },
      sla: { deliverWithin: '300ms', window: '1m' },
    });
    await r.ferry.waitFor('integrations', NS, 'stuck', (o) => o.status?.sla !== undefined, 20_000);
    await publishEvents(r, 'events.stuck', [{ id: 'stuck-1', amount: 1 }]);
    const degraded = await r.ferry.waitFor('integrations', NS, 'stuck', (o) => condition(o, 'Degraded')?.reason === 'SlaMissed', 20_000);
    assert.match(condition(degraded, 'Degraded')?.message ?? '', /the oldest event waiting in the source stream was published [\d.]+s ago \(deliverWithin 0.3s\)/);
    const sla = degraded.status?.sla as { total?: number; oldestPendingTime?: string } | undefined;
    assert.ok(sla?.oldestPendingTime !== undefined, `status.sla names the oldest waiting event: ${JSON.stringify(sla)}`);
    assert.equal(t.stats().applied, 0, 'seen while the event is still on its way, not after');
  });

  it('a circuit that opens again and again, and a fallback stream that keeps growing, give one Warning Event each', async () => {
    const t = await suite.target();
    let down = true;
    t.script(() => (down ? faults.status(503) : undefined));
    await createIntegration(r, {
      credentials: t.auth,
      name: 'flappy',
      subject: 'events.flappy',
      url: `${t.url}/v1/invoices`,
      delivery: {
        concurrency: 2,
        maxAttempts: 100,
        backoff: { initial: '10ms', max: '50ms', multiplier: 2, jitter: 'None' },
        circuitBreaker: { failures: 2, window: '30s', openFor: '1s' },
      },
    });
    const parking = await suite.target();
    parking.script(() => faults.status(422));
    await createIntegration(r, { credentials: parking.auth, name: 'parking', subject: 'events.parking', url: `${parking.url}/v1/invoices` });

    await publishEvents(r, 'events.flappy', Array.from({ length: 3 }, (_, i) => ({ id: `flap-${i}`, amount: i })));
    // Parked in bursts, so the leader sees the stream grow many times.
    for (let burst = 0; burst < 5; burst++) {
      await publishEvents(r, 'events.parking', Array.from({ length: 8 }, (_, i) => ({ id: `park-${burst}-${i}`, amount: i })));
      await eventually(`burst ${burst} parked`, async () => (await fallbackMessages(r, 'parking')).length === (burst + 1) * 8 || undefined, 20_000);
      await r.ferry.waitFor('integrations', NS, 'parking', (o) => o.status?.fallbackPending === (burst + 1) * 8, 20_000);
    }
    const opens = (): number => r.operators[0]!.logs.filter((l) => l.integration === 'flappy' && l.msg === 'circuit Open').length;
    await eventually('the circuit opened at least 4 times', () => opens() >= 4 || undefined, 30_000);
    down = false;
    await eventually('all 3 applied', () => t.stats().applied === 3 || undefined, 30_000);
    await drained(r, 'flappy');
    await r.ferry.waitFor('integrations', NS, 'flappy', (o) => condition(o, 'Degraded')?.status === 'False', 20_000);

    // Events are written asynchronously: give late ones time to show up before counting.
    await eventually('the CircuitOpen Warning', async () => (await warnings('flappy', 'CircuitOpen')).length > 0 || undefined, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const circuit = await warnings('flappy', 'CircuitOpen');
    assert.equal(circuit.length, 1, `one CircuitOpen Warning for ${opens()} opens, saw ${JSON.stringify(circuit.map((e) => e.note))}`);
    assert.equal(observed(circuit[0]!), 1);
    assert.match(circuit[0]!.note ?? '', /^circuit open after \d+ failures \(last: HTTP 503 from 127\.0\.0\.1:\d+\); consumption paused 1s, then one probe; check the target's health — events wait in the source stream/);
    const growing = await warnings('parking', 'FallbackGrowing');
    // The reason is named when the replicas' counters reached the leader before its count of the stream.
    assert.equal(growing.length, 1, `one FallbackGrowing Warning for 40 parked events, saw ${JSON.stringify(growing.map((e) => e.note))}`);
    assert.equal(observed(growing[0]!), 1);
    assert.match(growing[0]!.note ?? '', /^\d+ events parked in the fallback stream FERRY_FALLBACK_flows_parking \((last: rejected: HTTP 422|see their Ferry-Reason and Ferry-Error headers)\); fix the cause, then replay them/);
    assert.equal(parking.stats().applied, 0);
    assert.equal(t.stats().duplicates, 0);
  });
});
