/**
 * One tenant's bad object never stops the others, and what an object leaves behind is its own:
 * - a ConfigMap schema edited to invalid YAML stalls that Integration only — the operator keeps
 *   its leader, the neighbour keeps delivering, and the stalled one keeps delivering with its last
 *   good generation, also after the operator restarts (the last good generation is in KV), with
 *   its counters still reported in status;
 * - a deleted Integration's counters, shared state and metric series go with it: a re-created one
 *   of the same name starts from zero.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { Kvm } from '@nats-io/kv';
import { condition, isTrueNow } from '../support/ferry-client.ts';
import { createIntegration, drained, eventually, NS, publishEvents, runtimeSuite, type RuntimeEnv } from '../support/runtime-harness.ts';

const delivered = (o: { status?: Record<string, unknown> }): number | undefined => (o.status?.stats as { delivered?: number } | undefined)?.delivered;

describe('runtime: one tenant\'s object stays one tenant\'s problem', () => {
  const suite = runtimeSuite();
  let r: RuntimeEnv;
  before(async () => {
    r = suite.env();
    await r.startOperator('tenancy-1', ['--lease-duration=4', '--renew-deadline=3', '--retry-period=1']);
  });

  it('a ConfigMap edited to invalid YAML stalls only its Integration; the last good generation keeps delivering, also after a restart', async () => {
    const core = r.env.kubeConfig.makeApiClient(CoreV1Api);
    const schema = 'type: object\nrequired: [id, amount]\nproperties:\n  amount: { type: number }\n';
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'schemas' }, data: { 'deal.yaml': schema } } });
    const a = await suite.target();
    const b = await suite.target();
    await createIntegration(r, { credentials: a.auth, name: 'tenant-a', subject: 'events.tenant-a', url: `${a.url}/v1/a`, schema: { configMapKeyRef: { name: 'schemas', key: 'deal.yaml' } } });
    await createIntegration(r, { credentials: b.auth, name: 'tenant-b', subject: 'events.tenant-b', url: `${b.url}/v1/b` });
    await publishEvents(r, 'events.tenant-a', [{ id: 'a-1', amount: 1 }]);
    await eventually('a-1 delivered', () => a.appliedCount('a-1') === 1 || undefined, 20_000);

    // The typo.
    await core.replaceNamespacedConfigMap({ name: 'schemas', namespace: NS, body: { metadata: { name: 'schemas' }, data: { 'deal.yaml': 'type: object\n  required: [id\n' } } });
    const stalled = await r.ferry.waitFor('integrations', NS, 'tenant-a', (o) => isTrueNow(o, 'Stalled'), 30_000);
    assert.equal(condition(stalled, 'Stalled')?.reason, 'SchemaInvalid');
    assert.match(condition(stalled, 'Stalled')?.message ?? '', /^spec\.schema\.configMapKeyRef: ConfigMap "schemas" key "deal\.yaml" is not JSON or YAML/);

    // Everyone keeps working: the neighbour, and the stalled one on its last good generation.
    await publishEvents(r, 'events.tenant-b', [{ id: 'b-1', amount: 1 }]);
    await publishEvents(r, 'events.tenant-a', [{ id: 'a-2', amount: 2 }, { id: 'a-bad', amount: 'x' }]);
    await eventually('b-1 delivered', () => b.appliedCount('b-1') === 1 || undefined, 20_000);
    await eventually('a-2 delivered by the last good generation', () => a.appliedCount('a-2') === 1 || undefined, 20_000);
    assert.equal(a.appliedCount('a-bad'), 0, 'the last good schema still applies');
    const op = r.operators[0]!;
    assert.ok(op.process.running, 'the operator process is alive');
    assert.ok(!op.logs.some((l) => l.msg === 'manager exited' || l.msg === 'runnable failed'), 'no part of the operator stopped');
    // Status still reports the stalled Integration's delivery.
    await r.ferry.waitFor('integrations', NS, 'tenant-a', (o) => isTrueNow(o, 'Stalled') && delivered(o) === 2, 20_000);

    // A restart (rollout): the new process has no pipeline in memory, yet runs the last good generation.
    await op.stop();
    assert.equal(await op.process.exited(), 0);
    r.operators.splice(r.operators.indexOf(op), 1);
    const next = await r.startOperator('tenancy-2', ['--lease-duration=4', '--renew-deadline=3', '--retry-period=1']);
    await publishEvents(r, 'events.tenant-a', [{ id: 'a-3', amount: 3 }]);
    await publishEvents(r, 'events.tenant-b', [{ id: 'b-2', amount: 2 }]);
    await eventually('a-3 delivered after the restart', () => a.appliedCount('a-3') === 1 || undefined, 30_000);
    await eventually('b-2 delivered after the restart', () => b.appliedCount('b-2') === 1 || undefined, 30_000);
    assert.ok(next.logs.some((l) => l.msg === 'running the last good generation while the current one is stalled' && l.integration === `${NS}/tenant-a`));
    const afterRestart = await r.ferry.waitFor('integrations', NS, 'tenant-a', (o) => delivered(o) === 3, 20_000);
    assert.equal(condition(afterRestart, 'Stalled')?.status, 'True', 'still stalled: the ConfigMap is still broken');

    // Fixed: the current generation runs again.
    await core.replaceNamespacedConfigMap({ name: 'schemas', namespace: NS, body: { metadata: { name: 'schemas' }, data: { 'deal.yaml': schema } } });
    await r.ferry.waitFor('integrations', NS, 'tenant-a', (o) => isTrueNow(o, 'Ready'), 30_000);
    await drained(r, 'tenant-a');
    await drained(r, 'tenant-b');
  });

  it('a deleted Integration takes its counters, shared state and metric series with it', async () => {
    const t = await suite.target();
    const name = 'recycled';
    await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/x` });
    await publishEvents(r, `events.${name}`, Array.from({ length: 5 }, (_, i) => ({ id: `r-${i}`, amount: i })));
    await r.ferry.waitFor('integrations', NS, name, (o) => delivered(o) === 5, 30_000);
    const op = r.operators[0]!;
    const before = await op.metrics();
    assert.match(before, new RegExp(`ferry_events_total\\{namespace="${NS}",integration="${name}",outcome="delivered"\\} 5`));
    // The two histograms observed on every event (series kept by the pipeline, not prom-client).
    assert.match(before, new RegExp(`ferry_delivery_duration_seconds_count\\{namespace="${NS}",integration="${name}"\\} 5\\b`));
    assert.match(before, new RegExp(`ferry_end_to_end_latency_seconds_bucket\\{le="\\+Inf",namespace="${NS}",integration="${name}"\\} 5\\b`));

    await r.ferry.delete('integrations', NS, name);
    await r.ferry.waitGone('integrations', NS, name);
    await eventually('metric series removed', async () => !(await op.metrics()).includes(`integration="${name}"`) || undefined, 20_000);
    await op.waitForLog((l) => l.msg === 'removed the metric series of a deleted Integration' && l.integration === `${NS}/${name}`);
    const kv = await new Kvm(r.nc).open('ferry_integrations');
    const keys: string[] = [];
    for await (const k of await kv.keys(`${NS}.${name}.>`)) keys.push(k);
    assert.deepEqual(keys, [], 'shared counters, circuit, throttle and last good generation removed');

    await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/x` });
    await publishEvents(r, `events.${name}`, [{ id: 'r-new', amount: 1 }]);
    const fresh = await r.ferry.waitFor('integrations', NS, name, (o) => delivered(o) !== undefined, 30_000);
    assert.equal(delivered(fresh), 1, 'the re-created Integration starts from zero');
    await eventually('metric from zero', async () => new RegExp(`ferry_events_total\\{namespace="${NS}",integration="${name}",outcome="delivered"\\} 1\\b`).test(await op.metrics()) || undefined, 10_000);
    assert.match(await op.metrics(), new RegExp(`ferry_end_to_end_latency_seconds_count\\{namespace="${NS}",integration="${name}"\\} 1\\b`));
  });
});
