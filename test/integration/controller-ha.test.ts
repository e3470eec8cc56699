/**
 * Two operator processes share one Lease: exactly one reconciles; when it is SIGKILLed the
 * standby takes over within the lease duration and reconciles what is created meanwhile. A
 * kube-apiserver restart does not stop the watches: objects created after it are reconciled.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { installCrds } from '../support/crds.ts';
import { FerryClient, integrationSpec, isTrueNow } from '../support/ferry-client.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';

const NS = 'ha';
const IG = 'integrations';
// Short lease timings so the takeover is quick; the bound asserted below follows from them.
const LEASE_SECONDS = 4;
const leaseArgs = [`--lease-duration=${LEASE_SECONDS}`, '--renew-deadline=3', '--retry-period=1'];

function reconcileLines(op: OperatorProcess): number {
  return op.logs.filter((l) => l.msg === 'integration ready').length;
}

describe('operator high availability', () => {
  let env: ControlPlane;
  let ferry: FerryClient;
  const ops: OperatorProcess[] = [];

  before(async () => {
    env = await startControlPlane();
    await installCrds(env.kubeConfig);
    await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    const nc = await connect({ servers: env.natsUrl });
    await (await jetstreamManager(nc)).streams.add({ name: 'CRM_EVENTS', subjects: ['crm.>'] });
    await nc.close();
    ferry = new FerryClient(env.kubeConfig);
  });
  after(async () => {
    await Promise.all(ops.map((o) => o.stop()));
    await env.stop();
  });

  it('elects exactly one leader, and the standby takes over after the leader is SIGKILLed', async () => {
    const a = await startOperator({ env, identity: 'op-a', args: leaseArgs });
    ops.push(a);
    await a.waitForLog((l) => l.msg === 'acquired leadership');
    const b = await startOperator({ env, identity: 'op-b', args: leaseArgs });
    ops.push(b);
    await b.waitForLog((l) => l.msg === 'new leader observed' && l.holder === 'op-a');

    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'first' }, spec: integrationSpec() });
    await ferry.waitFor(IG, NS, 'first', (o) => isTrueNow(o, 'Ready'));
    // Logs arrive through a pipe, possibly after the status the test just read.
    await a.waitForLog((l) => l.msg === 'integration ready');
    assert.equal(reconcileLines(a), 1, 'the leader reconciled');
    assert.equal(reconcileLines(b), 0, 'the standby did not');
    assert.ok(!b.logs.some((l) => l.msg === 'controller started'), 'the standby never started its controllers');

    const lease = await env.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'ferry-operator', namespace: 'default' });
    assert.equal(lease.spec?.holderIdentity, 'op-a');
    assert.equal(lease.spec.leaseDurationSeconds, LEASE_SECONDS);

    await a.kill();
    const killedAt = Date.now();
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'second' }, spec: integrationSpec() });
    await ferry.waitFor(IG, NS, 'second', (o) => isTrueNow(o, 'Ready'), 30_000);
    const takeoverMs = Date.now() - killedAt;
    // Lease duration plus a few seconds: retry period, cache already warm, one reconcile.
    assert.ok(takeoverMs < (LEASE_SECONDS + 5) * 1000, `standby reconciled after ${takeoverMs} ms`);
    assert.ok(b.logs.some((l) => l.msg === 'acquired leadership'));
    await b.waitForLog((l) => l.msg === 'integration ready');
    assert.equal(reconcileLines(b), 1, 'the new leader reconciled the new Integration (the old one was already Ready)');
    const after = await env.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'ferry-operator', namespace: 'default' });
    assert.equal(after.spec?.holderIdentity, 'op-b');
    assert.ok((after.spec.leaseTransitions ?? 0) >= 1);
  });

  it('releases the Lease on SIGTERM', async () => {
    const leader = ops.find((o) => o.process.running);
    assert.ok(leader);
    await leader.stop();
    assert.equal(await leader.process.exited(), 0);
    assert.ok(leader.logs.some((l) => l.msg === 'released the lease'));
    const lease = await env.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'ferry-operator', namespace: 'default' });
    assert.ok(!lease.spec?.holderIdentity, `holder cleared, was ${String(lease.spec?.holderIdentity)}`);
  });

  it('recovers its watches after a kube-apiserver restart', async () => {
    // Default lease timings: a leader whose API server is gone for longer than the renew
    // deadline steps down and exits by design (its pod restarts); a few seconds must not.
    const leader = await startOperator({ env, identity: 'op-c' });
    ops.push(leader);
    await leader.waitForLog((l) => l.msg === 'acquired leadership');
    await ferry.waitFor(IG, NS, 'first', (o) => isTrueNow(o, 'Ready'));
    await env.restartApiServer();
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'after-restart' }, spec: integrationSpec() });
    const obj = await ferry.waitFor(IG, NS, 'after-restart', (o) => isTrueNow(o, 'Ready'), 60_000);
    assert.equal(obj.status?.observedGeneration, 1);
    const metrics = await leader.metrics();
    const restarts = [...metrics.matchAll(/^ferry_watch_restarts_total\{[^}]*resource="integrations"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(restarts >= 1, `the integrations watch restarted (${restarts})`);
    assert.ok(leader.process.running, 'the leader kept running through the restart');
    assert.ok(!leader.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('leadership lost')));
  });
});
