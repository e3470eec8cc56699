/**
 * Issue 11, goal 5: pipelines sharded across replicas. Three real operator processes with
 * --pipeline-replicas=1 share 150 Integrations: each runs about a third, every Integration runs
 * on exactly one; one process SIGKILLed mid-flow → its Integrations start on the other two once
 * its heartbeat expires, and every event is applied exactly once (counted by the business id in
 * the body at the target). An Integration with spec.runtime.replicas: All runs on all three, and
 * its rate limit holds in total, not per replica.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { credentialsFor } from '../support/credentials.ts';
import type { OperatorProcess } from '../support/operator-process.ts';
import { NS, SOURCE, eventually, publishEvents, putSecret, runtimeSuite, type RuntimeEnv } from '../support/runtime-harness.ts';

const COUNT = 150;
const EVERYWHERE = 'everywhere';
const FAST_LEASE = ['--lease-duration=4', '--renew-deadline=3', '--retry-period=1'];
const name = (i: number): string => `shard-${String(i).padStart(3, '0')}`;

/** What each process runs, from what it logged: started, minus stopped. */
function runningOn(op: OperatorProcess): Set<string> {
  const running = new Set<string>();
  for (const l of op.logs) {
    if (typeof l.integration !== 'string') continue;
    if (l.msg === 'pipeline started') running.add(l.integration);
    else if (typeof l.msg === 'string' && l.msg.startsWith('stopping pipeline')) running.delete(l.integration);
  }
  return running;
}

async function gauge(op: OperatorProcess, metric: string): Promise<number> {
  return Number(new RegExp(`^${metric} (\\S+)$`, 'm').exec(await op.metrics())?.[1] ?? Number.NaN);
}

/** Integration → the live processes that run it. */
function placement(ops: readonly OperatorProcess[]): Map<string, string[]> {
  const where = new Map<string, string[]>();
  for (const op of ops) for (const key of runningOn(op)) where.set(key, [...(where.get(key) ?? []), op.identity]);
  return where;
}

/** Every sharded Integration on exactly one of `ops`, the `All` one on each; undefined until then. */
function settledOn(ops: readonly OperatorProcess[]): Map<string, string[]> | undefined {
  const where = placement(ops);
  for (let i = 0; i < COUNT; i++) if (where.get(`${NS}/${name(i)}`)?.length !== 1) return undefined;
  if (where.get(`${NS}/${EVERYWHERE}`)?.length !== ops.length) return undefined;
  return where;
}

describe('runtime: pipelines sharded across operator replicas', { timeout: 240_000 }, () => {
  const suite = runtimeSuite();

  it(`${COUNT} Integrations over 3 processes: a third each, each on exactly one; one SIGKILLed → taken over within the heartbeat TTL, every event applied once; an All Integration runs on all three within its total rate`, async (ctx) => {
    const r: RuntimeEnv = suite.env();
    const t = await suite.target();
    const limited = await suite.target();
    const ops: OperatorProcess[] = [];
    for (const id of ['shard-a', 'shard-b', 'shard-c']) ops.push(await r.startOperator(id, [...FAST_LEASE, '--pipeline-replicas=1']));
    for (const op of ops) await eventually(`${op.identity} sees 3 replicas`, async () => (await gauge(op, 'ferry_replicas')) === 3 || undefined, 30_000);

    const credentials = credentialsFor(t.auth!, 'target');
    await putSecret(r, 'target', credentials.secret);
    const limitedCredentials = credentialsFor(limited.auth!, 'limited');
    await putSecret(r, 'limited', limitedCredentials.secret);
    const spec = (subject: string, url: string, auth: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      source: { stream: SOURCE, subjects: [subject] },
      transform: { mapping: { externalId: '/id', total: '/amount' } },
      // ack_wait is the timeout + 30 s: what the SIGKILLed process held comes back after it.
      target: { url, timeout: '1s', auth },
      delivery: { concurrency: 4, backoff: { initial: '200ms', max: '1s' } },
      ...extra,
    });
    for (let i = 0; i < COUNT; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, COUNT - i) }, (_, j) =>
          r.ferry.create('integrations', NS, { kind: 'Integration', metadata: { name: name(i + j) }, spec: spec(`events.shard.${String(i + j)}`, `${t.url}/v1/invoices`, credentials.auth) }),
        ),
      );
    }
    const perSecond = 20;
    await r.ferry.create('integrations', NS, {
      kind: 'Integration',
      metadata: { name: EVERYWHERE },
      spec: spec('events.everywhere', `${limited.url}/v1/invoices`, limitedCredentials.auth, {
        runtime: { replicas: 'All' },
        delivery: { concurrency: 4, rateLimit: { perSecond, burst: 1 } },
      }),
    });

    // Each runs about a third (150 keys: a standard deviation of about 6 around 50), every
    // sharded Integration on exactly one process, the All one on all three.
    const where = await eventually('every Integration placed', () => settledOn(ops), 90_000);
    const perProcess = ops.map((op) => runningOn(op).size - 1);
    assert.equal(perProcess.reduce((a, b) => a + b, 0), COUNT, perProcess.join(' + '));
    for (const n of perProcess) assert.ok(n >= 30 && n <= 70, `about a third each: ${perProcess.join(' / ')}`);
    ctx.diagnostic(`pipelines per process: ${perProcess.join(' / ')} (+1 All each)`);
    for (const [i, op] of ops.entries()) {
      await eventually(`${op.identity}: ferry_pipelines`, async () => (await gauge(op, 'ferry_pipelines')) === (perProcess[i] ?? 0) + 1 || undefined, 10_000);
    }

    // The All Integration's rate limit is shared by its three runners: about perSecond in total.
    const limitedEvents = 120;
    await publishEvents(r, 'events.everywhere', Array.from({ length: limitedEvents }, (_, i) => ({ id: `all-${String(i)}`, amount: i })));
    await eventually('the All Integration delivered everything', () => limited.stats().identities === limitedEvents || undefined, 60_000);
    assert.equal(limited.stats().duplicates, 0);
    const times = limited.requests.map((q) => q.receivedAt).sort((a, b) => a - b);
    const observed = (limitedEvents - 3) / (((times.at(-1) ?? 0) - (times[0] ?? 0)) / 1000); // minus the three bursts
    assert.ok(observed <= perSecond * 1.3, `observed ${observed.toFixed(1)}/s over three runners for a total of ${String(perSecond)}/s`);
    assert.ok(observed >= perSecond * 0.5, `observed ${observed.toFixed(1)}/s: each runner takes its third, no less`);
    const deliveredBy = await Promise.all(
      ops.map(async (op) => Number(new RegExp(`^ferry_events_total\\{namespace="${NS}",integration="${EVERYWHERE}",outcome="delivered"\\} (\\d+)`, 'm').exec(await op.metrics())?.[1] ?? 0)),
    );
    ctx.diagnostic(`All Integration: ${observed.toFixed(1)}/s observed for ${String(perSecond)}/s, delivered by ${deliveredBy.join(' + ')}`);
    assert.ok(deliveredBy.every((n) => n > 0), `all three delivered for the All Integration: ${deliveredBy.join(' + ')}`);

    // Events for every Integration; the victim is SIGKILLed while they flow, then more follow.
    const perIntegration = 8;
    const batch = (round: number): Promise<number[][]> =>
      Promise.all(
        Array.from({ length: COUNT }, (_, i) =>
          publishEvents(r, `events.shard.${String(i)}`, Array.from({ length: perIntegration / 2 }, (_, j) => ({ id: `${name(i)}-${String(round)}-${String(j)}`, amount: j }))),
        ),
      );
    await batch(0);
    const [victim, ...survivors] = ops;
    assert.ok(victim);
    const victimKeys = [...where].filter(([key, on]) => key !== `${NS}/${EVERYWHERE}` && on.includes(victim.identity)).map(([key]) => key);
    assert.ok(victimKeys.length > 0);
    await victim.kill();
    const killedAt = Date.now();
    await batch(1);

    // Its heartbeat expires after the members bucket's TTL (15 s); the others read the live set
    // every 3 s. Its Integrations then start on the two survivors, each on exactly one.
    await eventually('the victim\'s Integrations taken over', () => settledOn(survivors), 40_000);
    const takeoverMs = Date.now() - killedAt;
    assert.ok(takeoverMs < 25_000, `taken over after ${String(takeoverMs)} ms`);
    ctx.diagnostic(`${String(victimKeys.length)} Integrations of the SIGKILLed process taken over after ${String(takeoverMs)} ms`);
    const after = placement(survivors);
    for (const key of victimKeys) assert.equal(after.get(key)?.length, 1, `${key} runs on one survivor`);

    // Every event applied exactly once: what the victim held comes back after ack_wait (31 s).
    const total = COUNT * perIntegration;
    await eventually('every event applied', () => t.stats().identities === total || undefined, 90_000);
    ctx.diagnostic(`${String(total)} events applied once each, the last ${String(Date.now() - killedAt)} ms after the kill`);
    // A moment for a late duplicate to show, if there were one.
    await sleep(500);
    const s = t.stats();
    assert.equal(s.identities, total, 'nothing lost');
    assert.equal(s.duplicates, 0, 'nothing applied twice');
    for (let i = 0; i < COUNT; i++) {
      for (const round of [0, 1]) for (let j = 0; j < perIntegration / 2; j++) assert.equal(t.appliedCount(`${name(i)}-${String(round)}-${String(j)}`), 1);
    }
    for (const op of survivors) {
      const moved = new RegExp('^ferry_pipeline_assignment_changes_total\\{change="assigned"\\} (\\d+)', 'm').exec(await op.metrics())?.[1];
      assert.ok(Number(moved) > 0, `${op.identity} counted the Integrations assigned to it after the kill`);
    }
  });
});
