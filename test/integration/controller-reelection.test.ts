/**
 * A replica that loses the Lease and wins it again runs live controllers in its new term. The
 * fault is the real one: the process is frozen (SIGSTOP) for longer than the lease, as in a long
 * GC pause or a stalled node, then resumed (SIGCONT).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, CoreV1Api, type V1Lease } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { installCrds } from '../support/crds.ts';
import { FerryClient, integrationSpec, isTrueNow } from '../support/ferry-client.ts';
import { startOperator, type LogLine, type OperatorProcess } from '../support/operator-process.ts';

const NS = 'reelect';
const IG = 'integrations';
const LEASE_SECONDS = 4;
const leaseArgs = [`--lease-duration=${LEASE_SECONDS}`, '--renew-deadline=3', '--retry-period=1'];

const count = (op: OperatorProcess, predicate: (l: LogLine) => boolean): number => op.logs.filter(predicate).length;
const acquired = (l: LogLine): boolean => l.msg === 'acquired leadership';

describe('controllers after a re-election', { timeout: 300_000 }, () => {
  let env: ControlPlane;
  let ferry: FerryClient;
  let leases: CoordinationV1Api;
  const ops: OperatorProcess[] = [];

  before(async () => {
    env = await startControlPlane();
    await installCrds(env.kubeConfig);
    await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    const nc = await connect({ servers: env.natsUrl });
    await (await jetstreamManager(nc)).streams.add({ name: 'CRM_EVENTS', subjects: ['crm.>'] });
    await nc.close();
    ferry = new FerryClient(env.kubeConfig);
    leases = env.kubeConfig.makeApiClient(CoordinationV1Api);
  });
  after(async () => {
    for (const o of ops) o.resume();
    await Promise.all(ops.map((o) => o.stop()));
    await env.stop();
  });

  /** Waits until the Lease's own record says it expired: its holder has not renewed for longer than its duration. */
  async function waitLeaseExpired(name: string): Promise<V1Lease> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const lease = await leases.readNamespacedLease({ name, namespace: 'default' });
      const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
      const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
      // One extra second: renewTime has microsecond precision but was written by another clock read.
      if (Date.now() > renewed + duration + 1000) return lease;
      if (Date.now() > deadline) throw new Error(`lease ${name} did not expire: ${JSON.stringify(lease.spec)}`);
      await sleep(200);
    }
  }

  it('a single replica paused past its lease re-acquires it and reconciles again', async () => {
    const lease = 'solo-lease';
    const op = await startOperator({ env, identity: 'solo', args: [...leaseArgs, `--lease-name=${lease}`] });
    ops.push(op);
    await op.waitForLog(acquired);
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'before-pause' }, spec: integrationSpec() });
    await ferry.waitFor(IG, NS, 'before-pause', (o) => isTrueNow(o, 'Ready'));

    op.pause();
    try {
      await waitLeaseExpired(lease);
    } finally {
      op.resume();
    }
    // It notices the lost term, stops its leader work and wins the next term.
    await op.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('leadership lost'));
    const deadline = Date.now() + 30_000;
    while (count(op, acquired) < 2) {
      if (Date.now() > deadline) throw new Error(`no second term; tail:\n${op.process.tail()}`);
      await sleep(100);
    }

    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'after-pause' }, spec: integrationSpec() });
    const fresh = await ferry.waitFor(IG, NS, 'after-pause', (o) => isTrueNow(o, 'Ready'), 30_000);
    assert.equal(fresh.status?.observedGeneration, 1);
    const edited = await ferry.editSpec(IG, NS, 'before-pause', (spec) => {
      spec.suspend = true;
    });
    assert.equal(edited.metadata.generation, 2);
    const reconciled = await ferry.waitFor(IG, NS, 'before-pause', (o) => isTrueNow(o, 'Ready') && o.status?.observedGeneration === 2, 30_000);
    assert.equal(reconciled.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'Suspended');
    assert.ok(op.process.running);
    await op.stop();
  });

  it('a paused leader becomes a follower, and leads again (with live controllers) when the other replica dies', async () => {
    const lease = 'pair-lease';
    const a = await startOperator({ env, identity: 'pair-a', args: [...leaseArgs, `--lease-name=${lease}`] });
    ops.push(a);
    await a.waitForLog(acquired);
    const b = await startOperator({ env, identity: 'pair-b', args: [...leaseArgs, `--lease-name=${lease}`] });
    ops.push(b);
    await b.waitForLog((l) => l.msg === 'new leader observed' && l.holder === 'pair-a');

    a.pause();
    try {
      await b.waitForLog(acquired, 60_000);
    } finally {
      a.resume();
    }
    // A sees B's valid Lease, stops its leader work and stands by.
    await a.waitForLog((l) => typeof l.msg === 'string' && l.msg.endsWith('leadership lost'));
    await a.waitForLog((l) => l.msg === 'stopped leading');
    await a.waitForLog((l) => l.msg === 'campaigning for leadership' && a.logs.indexOf(l) > a.logs.findIndex((x) => x.msg === 'stopped leading'));
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'under-b' }, spec: integrationSpec() });
    await ferry.waitFor(IG, NS, 'under-b', (o) => isTrueNow(o, 'Ready'), 30_000);
    assert.equal(count(a, acquired), 1, 'A did not lead again while B held the Lease');

    await b.kill();
    await a.waitForLog((l) => acquired(l) && count(a, acquired) === 2, 30_000);
    // Between its terms A did no leader work: its controllers stopped and reconciled nothing.
    const stoppedAt = a.logs.findIndex((l) => l.msg === 'stopped leading');
    const resumedAt = a.logs.findIndex((l, i) => i > stoppedAt && acquired(l));
    const between = a.logs.slice(stoppedAt, resumedAt);
    assert.ok(
      a.logs.slice(0, stoppedAt).some((l) => l.msg === 'controller stopped' && l.controller === 'integration'),
      'the integration controller stopped when the term ended',
    );
    assert.ok(!between.some((l) => l.msg === 'reconciled' || l.msg === 'integration ready'), 'no reconcile while a follower');
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'under-a-again' }, spec: integrationSpec() });
    const obj = await ferry.waitFor(IG, NS, 'under-a-again', (o) => isTrueNow(o, 'Ready'), 30_000);
    assert.equal(obj.status?.observedGeneration, 1);
    const held = await leases.readNamespacedLease({ name: lease, namespace: 'default' });
    assert.equal(held.spec?.holderIdentity, 'pair-a');
  });
});
