/**
 * Crashes and restarts mid-stream: the operator SIGKILLed and restarted, nats-server restarted,
 * and two replicas sharing one Integration. Effects are counted by the invoice in the body (the
 * business identity), so "zero duplicates" means no event was applied twice — whatever was
 * re-sent and whatever key it carried.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { faults, type FaultTarget } from '../support/fault-target.ts';
import {
  createIntegration,
  drained,
  eventually,
  fallbackMessages,
  publishEvents,
  runtimeSuite,
  type RuntimeEnv,
} from '../support/runtime-harness.ts';

describe('runtime: crashes, restarts and replicas', () => {
  const suite = runtimeSuite();
  const target = (): Promise<FaultTarget> => suite.target();
  let r: RuntimeEnv;
  before(() => {
    r = suite.env();
  });

  it('row 8: SIGKILL the operator mid-stream, start it again → every event delivered, zero duplicates', async () => {
    const t = await target();
    // Slow answers keep many events in flight at the moment of the kill.
    t.script(() => faults.slow(20));
    const op = await r.startOperator('crash-1');
    await createIntegration(r, { credentials: t.auth, name: 'crash', subject: 'events.crash', url: `${t.url}/v1/invoices`, target: { timeout: '2s' }, delivery: { concurrency: 32 } });
    await publishEvents(r, 'events.crash', Array.from({ length: 2_000 }, (_, i) => ({ id: `crash-${i}`, amount: i })));
    await eventually('some applied', () => t.stats().applied > 300 || undefined, 60_000);
    await op.kill();
    const appliedAtKill = t.stats().applied;
    assert.ok(appliedAtKill < 2_000, 'killed mid-stream');
    await r.startOperator('crash-2');
    await eventually('all applied', () => t.stats().applied === 2_000 || undefined, 120_000);
    await drained(r, 'crash', 120_000);
    const s = t.stats();
    assert.equal(s.applied, 2_000);
    assert.equal(s.identities, 2_000);
    assert.equal(s.duplicates, 0);
    assert.equal((await fallbackMessages(r, 'crash')).length, 0);
  });

  it('row 9: restart nats-server mid-stream → no loss, no duplicate', async () => {
    const t = await target();
    t.script(() => faults.slow(5));
    await createIntegration(r, { credentials: t.auth, name: 'natsdown', subject: 'events.natsdown', url: `${t.url}/v1/invoices`, delivery: { concurrency: 16 } });
    await publishEvents(r, 'events.natsdown', Array.from({ length: 1_000 }, (_, i) => ({ id: `nd-${i}`, amount: i })));
    await eventually('some applied', () => t.stats().applied > 100 || undefined, 60_000);
    await r.env.restartNats();
    await r.reconnect();
    await publishEvents(r, 'events.natsdown', Array.from({ length: 500 }, (_, i) => ({ id: `nd-after-${i}`, amount: i })));
    await eventually('all 1,500 applied', () => t.stats().applied === 1_500 || undefined, 120_000);
    await drained(r, 'natsdown', 120_000);
    const s = t.stats();
    assert.equal(s.identities, 1_500);
    assert.equal(s.duplicates, 0);
    assert.equal((await fallbackMessages(r, 'natsdown')).length, 0);
  });

  it('row 12: two replicas on one Integration → both deliver, exactly once in total, the rate limit holds across both', async () => {
    const t = await target();
    await r.startOperator('replica-b');
    // Both replicas must count each other before the rate is measured: each divides the shared
    // rate by the replicas it sees.
    for (const op of r.operators.filter((o) => o.process.running)) {
      await eventually(`${op.identity} counts two live replicas`, async () => /^ferry_replicas 2$/m.test(await op.metrics()) || undefined, 30_000);
    }
    const perSecond = 50;
    await createIntegration(r, {
      credentials: t.auth,
      name: 'shared',
      subject: 'events.shared',
      url: `${t.url}/v1/invoices`,
      delivery: { concurrency: 8, rateLimit: { perSecond, burst: 5 } },
    });
    const n = 400;
    await publishEvents(r, 'events.shared', Array.from({ length: n }, (_, i) => ({ id: `sh-${i}`, amount: i })));
    await eventually('all applied', () => t.stats().applied === n || undefined, 60_000);
    await drained(r, 'shared');
    const s = t.stats();
    assert.equal(s.duplicates, 0);
    assert.equal(s.identities, n);
    // Both replicas delivered some of them.
    const running = r.operators.filter((o) => o.process.running);
    assert.equal(running.length, 2);
    const perReplica = await Promise.all(
      running.map(async (o) => Number(/^ferry_events_total\{namespace="flows",integration="shared",outcome="delivered"\} (\d+)/m.exec(await o.metrics())?.[1] ?? 0)),
    );
    assert.ok(perReplica.every((count) => count > 0), `both replicas delivered: ${perReplica.join(' + ')}`);
    assert.equal(perReplica.reduce((a, b) => a + b, 0), n, 'and together exactly once each');
    // The shared rate held: over the steady part, the observed rate stays near perSecond.
    const times = t.requests.map((q) => q.receivedAt).sort((a, b) => a - b);
    const span = ((times.at(-1) ?? 0) - (times[0] ?? 0)) / 1000;
    const observed = (n - 2 * 5) / span; // minus both replicas' bursts
    assert.ok(observed <= perSecond * 1.25, `observed ${observed.toFixed(1)}/s across replicas for a shared limit of ${perSecond}/s`);
    const replicaLogs = r.operators.filter((o) => o.process.running).map((o) => o.logs.filter((l) => l.msg === 'pipeline started' && l.integration === 'flows/shared').length);
    assert.deepEqual(replicaLogs, [1, 1], 'each live replica runs the pipeline');
  });
});
