/**
 * Pipeline lifecycle, end to end: `suspend: true` stops consuming and `false` resumes; a spec
 * change mid-stream swaps the pipeline without losing or doubling an event; a bad generation
 * leaves the last good one delivering; SIGTERM drains in-flight deliveries before exit.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { faults, type FaultTarget } from '../support/fault-target.ts';
import { condition, isTrueNow } from '../support/ferry-client.ts';
import {
  consumerState,
  createIntegration,
  drained,
  eventually,
  fallbackMessages,
  NS,
  publishEvents,
  runtimeSuite,
  type RuntimeEnv,
} from '../support/runtime-harness.ts';

describe('runtime: pipeline lifecycle', () => {
  const suite = runtimeSuite('life-1');
  const target = (): Promise<FaultTarget> => suite.target();
  let r: RuntimeEnv;
  before(() => {
    r = suite.env();
  });

  it('suspend: true stops consuming; false resumes and delivers what waited', async () => {
    const t = await target();
    await createIntegration(r, { credentials: t.auth, name: 'pausable', subject: 'events.pausable', url: `${t.url}/v1/x` });
    // Suspend a pipeline that runs: a suspend that lands before the runtime ever started it
    // (Ready comes first, the runtime's passes follow) leaves nothing to stop.
    await r.operators[0]!.waitForLog((l) => l.msg === 'pipeline started' && l.integration === `${NS}/pausable`);
    await r.ferry.editSpec('integrations', NS, 'pausable', (spec) => {
      spec.suspend = true;
    });
    const suspended = await r.ferry.waitFor('integrations', NS, 'pausable', (o) => o.status?.observedGeneration === 2 && isTrueNow(o, 'Ready'));
    assert.equal(condition(suspended, 'Ready')?.reason, 'Suspended');
    await r.operators[0]!.waitForLog((l) => l.msg === 'stopping pipeline (suspended)' && l.integration === `${NS}/pausable`);
    await publishEvents(r, 'events.pausable', Array.from({ length: 20 }, (_, i) => ({ id: `p-${i}`, amount: i })));
    await sleep(1_500);
    assert.equal(t.requests.length, 0, 'nothing delivered while suspended');
    assert.equal((await consumerState(r, 'pausable')).pending, 20, 'the events wait in the stream');

    await r.ferry.editSpec('integrations', NS, 'pausable', (spec) => {
      spec.suspend = false;
    });
    await eventually('20 delivered after resume', () => t.stats().applied === 20 || undefined, 30_000);
    await drained(r, 'pausable');
    assert.equal(t.stats().duplicates, 0);
  });

  it('a spec change mid-stream swaps the pipeline: every event once, the new generation takes over', async () => {
    const t = await target();
    t.script(() => faults.slow(10));
    await createIntegration(r, { credentials: t.auth, name: 'swap', subject: 'events.swap', url: `${t.url}/v1/x`, delivery: { concurrency: 8 } });
    const n = 1_000;
    await publishEvents(r, 'events.swap', Array.from({ length: n }, (_, i) => ({ id: `s-${i}`, amount: i })));
    await eventually('some delivered', () => t.stats().applied > 100 || undefined, 30_000);
    await r.ferry.editSpec('integrations', NS, 'swap', (spec) => {
      (spec.target as Record<string, unknown>).headers = { 'X-Generation': '2' };
    });
    await eventually(`all ${n} delivered`, () => t.stats().applied === n || undefined, 60_000);
    await drained(r, 'swap');
    const s = t.stats();
    assert.equal(s.duplicates, 0);
    assert.equal(s.identities, n);
    const withHeader = t.requests.filter((q) => q.headers['x-generation'] === '2').length;
    assert.ok(withHeader > 0 && withHeader < n, `the new generation delivered the rest (${withHeader} of ${n})`);
    // Events in flight finish with the generation they started with (at most `concurrency`);
    // every event started after the switch uses the new one.
    const firstNew = t.requests.findIndex((q) => q.headers['x-generation'] === '2');
    assert.ok(t.requests.slice(firstNew).filter((q) => q.headers['x-generation'] !== '2').length <= 8);
    assert.ok(t.requests.slice(firstNew + 8).every((q) => q.headers['x-generation'] === '2'));
    assert.ok(r.operators[0]!.logs.some((l) => l.msg === 'swapping pipeline configuration in place' && l.integration === `${NS}/swap`));
  });

  it('a generation that does not compile leaves the last good one delivering', async () => {
    const t = await target();
    await createIntegration(r, { credentials: t.auth, name: 'lastgood', subject: 'events.lastgood', url: `${t.url}/v1/x` });
    await r.ferry.editSpec('integrations', NS, 'lastgood', (spec) => {
      spec.transform = { jsonata: '$broken(' };
    });
    const stalled = await r.ferry.waitFor('integrations', NS, 'lastgood', (o) => isTrueNow(o, 'Stalled'));
    assert.equal(condition(stalled, 'Stalled')?.reason, 'TransformInvalid');
    await publishEvents(r, 'events.lastgood', [{ id: 'lg-1', amount: 7 }]);
    await eventually('delivered by the last good generation', () => t.stats().applied === 1 || undefined, 20_000);
    assert.deepEqual(JSON.parse(t.applied[0]!.body), { externalId: 'lg-1', total: 7 });
  });

  it('SIGTERM drains in-flight deliveries before exit; the next replica finishes the rest, once each', async () => {
    const t = await target();
    t.script(() => faults.slow(300));
    await createIntegration(r, { credentials: t.auth, name: 'drain', subject: 'events.drain', url: `${t.url}/v1/x`, target: { timeout: '1s' }, delivery: { concurrency: 8 } });
    await publishEvents(r, 'events.drain', Array.from({ length: 80 }, (_, i) => ({ id: `d-${i}`, amount: i })));
    await eventually('deliveries in flight', () => t.requests.length >= 8 || undefined, 20_000);
    const op = r.operators[0]!;
    await op.stop();
    assert.equal(await op.process.exited(), 0, 'clean exit after SIGTERM');
    // Every request the operator started was answered and acknowledged before it exited.
    assert.equal(t.requests.filter((q) => q.outcome === 'pending').length, 0);
    const appliedAtExit = t.stats().applied;
    assert.ok(appliedAtExit < 80);
    // What was delivered was acknowledged; everything else is still in the stream.
    const state = await consumerState(r, 'drain');
    assert.equal(state.pending + state.ackPending, 80 - appliedAtExit, `every event not yet delivered is still in the stream: ${JSON.stringify(state)}`);
    // Events pulled but never started were handed back (nak), not left to wait for ack_wait.
    const handedBack = op.logs.find((l) => l.msg === 'stopped pulling; unstarted events handed back' && l.integration === 'drain');
    assert.ok(handedBack, 'the pipeline handed its unstarted events back');
    const exitedAt = Date.now();
    const ackWaitMs = 1_000 + 30_000;

    await r.startOperator('life-2');
    await eventually('all 80 delivered', () => t.stats().applied === 80 || undefined, 90_000);
    assert.ok(Date.now() - exitedAt < ackWaitMs - 5_000, `the rest was delivered at once by the next replica, not after ack_wait (${Date.now() - exitedAt} ms)`);
    await drained(r, 'drain');
    assert.equal(t.stats().duplicates, 0);
    assert.equal((await fallbackMessages(r, 'drain')).length, 0);
  });
});
