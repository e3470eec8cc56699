/**
 * The operator, run as its own process, reconciles Integrations against a real kube-apiserver
 * and nats-server: Ready, Stalled with the exact field, healing when a Secret appears,
 * observedGeneration, kubectl wait, and cleanup on delete.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CoreV1Api, EventsV1Api } from '@kubernetes/client-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { installCrds } from '../support/crds.ts';
import { condition, FerryClient, integrationSpec, isTrueNow } from '../support/ferry-client.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const execFileAsync = promisify(execFile);
const NS = 'revops';
const IG = 'integrations';

describe('Integration reconciliation', () => {
  let env: ControlPlane;
  let op: OperatorProcess;
  let ferry: FerryClient;
  let core: CoreV1Api;
  let nc: NatsConnection;
  // The operator reaches nats-server through it, so a test can cut the operator's link alone.
  let proxy: TcpProxy;

  before(async () => {
    env = await startControlPlane();
    await installCrds(env.kubeConfig);
    core = env.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    nc = await connect({ servers: env.natsUrl });
    await (await jetstreamManager(nc)).streams.add({ name: 'CRM_EVENTS', subjects: ['crm.>'] });
    ferry = new FerryClient(env.kubeConfig);
    const natsAddress = new URL(env.natsUrl);
    proxy = await startTcpProxy(natsAddress.hostname, Number(natsAddress.port));
    op = await startOperator({ env, identity: 'solo', natsUrl: `nats://${proxy.address}` });
  });
  after(async () => {
    await op.stop();
    await proxy.close();
    await nc.close();
    await env.stop();
  });

  it('makes a valid Integration Ready and provisions its consumer and fallback stream', async () => {
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'good' }, spec: integrationSpec() });
    const obj = await ferry.waitFor(IG, NS, 'good', (o) => isTrueNow(o, 'Ready'));
    assert.equal(obj.status?.observedGeneration, 1);
    assert.equal(condition(obj, 'Ready')?.reason, 'Delivering');
    assert.equal(condition(obj, 'Stalled')?.status, 'False');
    assert.equal(condition(obj, 'Reconciling')?.status, 'False');
    assert.equal(condition(obj, 'Degraded')?.status, 'False');
    assert.ok(obj.metadata.finalizers?.includes('ferry.dev/cleanup'));
    assert.equal(obj.status.fallbackPending, 0);

    const jsm = await jetstreamManager(nc);
    const consumer = await jsm.consumers.info('CRM_EVENTS', 'ferry_revops_good');
    assert.equal(consumer.config.filter_subject, 'crm.deals.closed');
    assert.equal(consumer.config.ack_policy, 'explicit');
    const fallback = await jsm.streams.info('FERRY_FALLBACK_revops_good');
    assert.deepEqual(fallback.config.subjects, ['ferry.fallback.revops.good']);
    assert.equal(fallback.config.max_age, 14 * 86_400 * 1e9);
  });

  it('reports an invalid JSON Schema as Stalled with the field path', async () => {
    await ferry.create(IG, NS, {
      kind: 'Integration',
      metadata: { name: 'bad-schema' },
      spec: integrationSpec({ schema: { inline: { type: 'object', properties: { amount: { type: 'nummber' } } } } }),
    });
    const obj = await ferry.waitFor(IG, NS, 'bad-schema', (o) => isTrueNow(o, 'Stalled'));
    const stalled = condition(obj, 'Stalled');
    assert.equal(stalled?.reason, 'SchemaInvalid');
    assert.match(stalled.message, /^spec\.schema\.inline\.properties\.amount\.type: must be equal to one of the allowed values/);
    assert.equal(condition(obj, 'Ready')?.status, 'False');
    assert.equal(obj.status?.observedGeneration, 1);
  });

  it('reports an invalid JSONata expression as Stalled with the field path', async () => {
    await ferry.create(IG, NS, {
      kind: 'Integration',
      metadata: { name: 'bad-jsonata' },
      spec: integrationSpec({ transform: { jsonata: '{ "total": $round(amount * 100 }' } }),
    });
    const obj = await ferry.waitFor(IG, NS, 'bad-jsonata', (o) => isTrueNow(o, 'Stalled'));
    assert.equal(condition(obj, 'Stalled')?.reason, 'TransformInvalid');
    assert.match(condition(obj, 'Stalled')?.message ?? '', /^spec\.transform\.jsonata: Expected "\)", got "}" at position \d+/);
  });

  it('refuses delivery.orderingKey loudly (Stalled) rather than deliver out of order', async () => {
    await ferry.create(IG, NS, {
      kind: 'Integration',
      metadata: { name: 'ordered' },
      spec: integrationSpec({ delivery: { orderingKey: '/dealId' } }),
    });
    const obj = await ferry.waitFor(IG, NS, 'ordered', (o) => isTrueNow(o, 'Stalled'));
    assert.equal(condition(obj, 'Stalled')?.reason, 'SpecInvalid');
    assert.match(condition(obj, 'Stalled')?.message ?? '', /^spec\.delivery\.orderingKey: ordered delivery is not supported/);
  });

  it('heals without a restart when the missing Secret is created', async () => {
    await ferry.create(IG, NS, {
      kind: 'Integration',
      metadata: { name: 'needs-secret' },
      spec: integrationSpec({ target: { url: 'https://billing.example.com/v1/invoices', auth: { bearer: { secretKeyRef: { name: 'billing-api', key: 'token' } } } } }),
    });
    let obj = await ferry.waitFor(IG, NS, 'needs-secret', (o) => isTrueNow(o, 'Stalled'));
    assert.equal(condition(obj, 'Stalled')?.reason, 'SecretNotFound');
    assert.equal(condition(obj, 'Stalled')?.message, 'spec.target.auth.bearer.secretKeyRef: Secret "billing-api" not found in namespace "revops"');
    const stalledSince = condition(obj, 'Ready')?.lastTransitionTime;

    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'billing-api' }, stringData: { token: 's3cr3t' } } });
    obj = await ferry.waitFor(IG, NS, 'needs-secret', (o) => isTrueNow(o, 'Ready'));
    assert.equal(condition(obj, 'Stalled')?.status, 'False');
    assert.ok(stalledSince !== undefined);
    assert.ok(Date.parse(condition(obj, 'Ready')?.lastTransitionTime ?? '') >= Date.parse(stalledSince), 'Ready flipped, so its transition time moved');
    const logged = op.logs.map((l) => JSON.stringify(l)).join('\n');
    assert.ok(!logged.includes('s3cr3t'), 'the Secret value never reaches a log');
  });

  it('stalls an Integration whose source stream refuses another consumer, says which limit, and heals when the stream allows more', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'NARROW', subjects: ['narrow.>'], max_consumers: 1 });
    const on = (subject: string) => integrationSpec({ source: { stream: 'NARROW', subjects: [subject] } });
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'narrow-first' }, spec: on('narrow.a') });
    await ferry.waitFor(IG, NS, 'narrow-first', (o) => isTrueNow(o, 'Ready'));
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'narrow-second' }, spec: on('narrow.b') });
    const stalled = await ferry.waitFor(IG, NS, 'narrow-second', (o) => isTrueNow(o, 'Stalled'));
    assert.equal(condition(stalled, 'Stalled')?.reason, 'ConsumerLimitReached');
    assert.match(condition(stalled, 'Stalled')?.message ?? '', /^spec\.source\.stream: stream "NARROW" refused this Integration's consumer: its max_consumers is reached .*raise the stream's max_consumers/);
    assert.equal(condition(stalled, 'Ready')?.status, 'False');
    // Per object: the first one on that stream, and the others, stay Ready.
    assert.ok(isTrueNow(await ferry.get(IG, NS, 'narrow-first'), 'Ready'));
    assert.ok(isTrueNow(await ferry.get(IG, NS, 'good'), 'Ready'));

    // nats-server 2.15 lets a stream's max_consumers be raised; the client's update type does
    // not list the field yet, so the update goes to the JetStream API as it is on the wire.
    const info = await jsm.streams.info('NARROW');
    const answer = (await nc.request('$JS.API.STREAM.UPDATE.NARROW', JSON.stringify({ ...info.config, max_consumers: 2 }))).json<{ error?: unknown; config?: { max_consumers?: number } }>();
    assert.equal(answer.error, undefined, JSON.stringify(answer.error));
    assert.equal(answer.config?.max_consumers, 2);
    const healed = await ferry.waitFor(IG, NS, 'narrow-second', (o) => isTrueNow(o, 'Ready'), 45_000);
    assert.equal(condition(healed, 'Stalled')?.status, 'False');
    assert.equal((await jsm.consumers.info('NARROW', 'ferry_revops_narrow-second')).config.filter_subject, 'narrow.b');
  });

  it('re-creates a consumer and a fallback stream deleted by hand at once, from JetStream advisories, not at the ten-minute resync', async () => {
    const jsm = await jetstreamManager(nc);
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'drift' }, spec: integrationSpec() });
    await ferry.waitFor(IG, NS, 'drift', (o) => isTrueNow(o, 'Ready'));
    // The resync is 10 minutes and nothing else about the object changes: only the advisory can
    // bring either back within the test's wait.
    const exists = async (what: () => Promise<unknown>, label: string): Promise<void> => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (await what().then(() => true, () => false)) return;
        if (Date.now() > deadline) assert.fail(`${label} was not re-created\n${op.process.tail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    assert.ok(await jsm.consumers.delete('CRM_EVENTS', 'ferry_revops_drift'));
    await exists(() => jsm.consumers.info('CRM_EVENTS', 'ferry_revops_drift'), 'the consumer');
    assert.equal((await jsm.consumers.info('CRM_EVENTS', 'ferry_revops_drift')).config.filter_subject, 'crm.deals.closed');
    assert.ok(await jsm.streams.delete('FERRY_FALLBACK_revops_drift'));
    await exists(() => jsm.streams.info('FERRY_FALLBACK_revops_drift'), 'the fallback stream');
    assert.deepEqual((await jsm.streams.info('FERRY_FALLBACK_revops_drift')).config.subjects, ['ferry.fallback.revops.drift']);
    assert.ok(isTrueNow(await ferry.get(IG, NS, 'drift'), 'Ready'));
  });

  it('re-creates a consumer deleted while the operator was disconnected from NATS (its advisory lost) once it reconnects', async () => {
    const jsm = await jetstreamManager(nc);
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'unseen' }, spec: integrationSpec() });
    await ferry.waitFor(IG, NS, 'unseen', (o) => isTrueNow(o, 'Ready'));
    const seen = op.logs.length;
    proxy.down();
    try {
      await op.waitForLog((l) => l.msg === 'nats connection disconnect' && op.logs.indexOf(l) >= seen);
      assert.ok(await jsm.consumers.delete('CRM_EVENTS', 'ferry_revops_unseen'));
    } finally {
      proxy.up();
    }
    // Advisories are core NATS messages: the CONSUMER.DELETED one went to nobody. What brings the
    // consumer back this soon is a reconcile of every Integration once NATS is back: the reconnect
    // enqueues them, and so does the shared-state probe when an outage outlasts its 2 s period.
    const deadline = Date.now() + 20_000;
    while (!(await jsm.consumers.info('CRM_EVENTS', 'ferry_revops_unseen').then(() => true, () => false))) {
      if (Date.now() > deadline) assert.fail(`the consumer was not re-created after the reconnect\n${op.process.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await ferry.waitFor(IG, NS, 'unseen', (o) => isTrueNow(o, 'Ready'));
  });

  it('becomes Ready as soon as its missing source stream is created, before its 15 s retry', async () => {
    const on = integrationSpec({ source: { stream: 'LATE_EVENTS', subjects: ['late.a'] } });
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: 'late' }, spec: on });
    const stalled = await ferry.waitFor(IG, NS, 'late', (o) => isTrueNow(o, 'Stalled'));
    assert.equal(condition(stalled, 'Stalled')?.reason, 'StreamNotFound');
    // Past any reconcile already queued behind the first (its creation's own watch events), so
    // that only the advisory or the retry can find the stream.
    await new Promise((r) => setTimeout(r, 2_000));
    await (await jetstreamManager(nc)).streams.add({ name: 'LATE_EVENTS', subjects: ['late.>'] });
    // The retry comes 15 s after the reconcile that found no stream; the advisory well before.
    await ferry.waitFor(IG, NS, 'late', (o) => isTrueNow(o, 'Ready'), 10_000);
  });

  it('moves observedGeneration on a spec edit, and keeps lastTransitionTime while Ready stays True', async () => {
    const before = await ferry.waitFor(IG, NS, 'good', (o) => isTrueNow(o, 'Ready'));
    const readySince = condition(before, 'Ready')?.lastTransitionTime;
    const edited = await ferry.editSpec(IG, NS, 'good', (spec) => {
      (spec.delivery as Record<string, unknown>).concurrency = 4; // defaulted by the CRD
    });
    assert.equal(edited.metadata.generation, 2);
    const after = await ferry.waitFor(IG, NS, 'good', (o) => o.status?.observedGeneration === 2 && isTrueNow(o, 'Ready'));
    for (const c of after.status?.conditions ?? []) assert.equal(c.observedGeneration, 2, `${c.type} describes generation 2`);
    assert.equal(condition(after, 'Ready')?.lastTransitionTime, readySince);
    const consumer = await (await jetstreamManager(nc)).consumers.info('CRM_EVENTS', 'ferry_revops_good');
    assert.equal(consumer.config.max_ack_pending, 64);
    assert.equal(consumer.config.metadata?.['ferry.dev/generation'], '2');
  });

  it('fixes a stalled generation when the spec is corrected', async () => {
    await ferry.editSpec(IG, NS, 'bad-schema', (spec) => {
      spec.schema = { inline: { type: 'object', properties: { amount: { type: 'number' } } } };
    });
    const obj = await ferry.waitFor(IG, NS, 'bad-schema', (o) => o.status?.observedGeneration === 2 && isTrueNow(o, 'Ready'));
    assert.equal(condition(obj, 'Stalled')?.status, 'False');
  });

  it('satisfies kubectl wait on a healthy Integration and times out on a stalled one', async () => {
    const kubectl = (args: string[]) => execFileAsync(env.binaries.kubectl, ['--kubeconfig', env.kubeconfigPath, '-n', NS, ...args]);
    const ok = await kubectl(['wait', '--for=condition=Ready', 'integration/good', '--timeout=20s']);
    assert.match(ok.stdout, /integration\.ferry\.dev\/good condition met/);
    await assert.rejects(kubectl(['wait', '--for=condition=Ready', 'integration/bad-jsonata', '--timeout=2s']), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr ?? '', /timed out waiting for the condition/);
      return true;
    });
    const listed = await kubectl(['get', 'ferry']);
    assert.match(listed.stdout, /good/);
  });

  it('schedules a SyncSchedule (nextScheduleTime in its time zone) and stalls one with an unknown time zone', async () => {
    const spec = (timeZone: string) => ({
      schedule: '0 9 * * *',
      timeZone,
      source: { url: 'https://crm.example.com/api/contacts', recordsPath: '/data' },
      key: '/id',
      target: { url: 'https://erp.example.com/api/customers/{{/id}}' },
    });
    await ferry.create('syncschedules', NS, { kind: 'SyncSchedule', metadata: { name: 'contacts' }, spec: spec('Europe/Berlin') });
    const ok = await ferry.waitFor('syncschedules', NS, 'contacts', (o) => isTrueNow(o, 'Ready'));
    assert.equal(condition(ok, 'Ready')?.reason, 'Scheduled');
    const next = new Date(String(ok.status?.nextScheduleTime));
    assert.ok(next.getTime() > Date.now());
    assert.equal(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(next), '09:00');
    const kv = await jetstreamManager(nc);
    assert.ok((await kv.streams.info('KV_ferry_sync_revops_contacts')).config.name);

    await ferry.create('syncschedules', NS, { kind: 'SyncSchedule', metadata: { name: 'bad-tz' }, spec: spec('Mars/Olympus_Mons') });
    const bad = await ferry.waitFor('syncschedules', NS, 'bad-tz', (o) => isTrueNow(o, 'Stalled'));
    assert.match(condition(bad, 'Stalled')?.message ?? '', /^spec\.timeZone: /);
  });

  it('serves health, readiness and controller-runtime metrics, and records Events', async () => {
    const ready = await fetch(`http://127.0.0.1:${op.httpPort}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), '[+]nats ok\n[+]crd integrations.ferry.dev ok\n[+]crd syncschedules.ferry.dev ok\n[+]caches ok\nok\n');
    assert.equal((await fetch(`http://127.0.0.1:${op.httpPort}/healthz`)).status, 200);
    const metrics = await op.metrics();
    assert.match(metrics, /^controller_runtime_reconcile_total\{controller="integration",result="requeue_after"\} [1-9]/m);
    assert.match(metrics, /^controller_runtime_reconcile_time_seconds_count\{controller="integration"\} [1-9]/m);
    assert.match(metrics, /^workqueue_depth\{name="integration"\} \d+/m);
    assert.match(metrics, /^workqueue_adds_total\{name="syncschedule"\} [1-9]/m);
    const events = await env.kubeConfig.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: NS });
    const stalled = events.items.find((e) => e.regarding?.name === 'bad-jsonata' && e.type === 'Warning');
    assert.equal(stalled?.reason, 'TransformInvalid');
    assert.equal(stalled.reportingController, 'ferry.dev/operator');
    assert.ok(events.items.some((e) => e.regarding?.name === 'good' && e.type === 'Normal' && e.reason === 'Delivering'));
  });

  it('on delete removes the consumer and the object, and keeps the fallback messages', async () => {
    const js = jetstream(nc);
    await js.publish('ferry.fallback.revops.good', JSON.stringify({ id: 'parked' }), { msgID: 'CRM_EVENTS:1' });
    await ferry.delete(IG, NS, 'good');
    await ferry.waitGone(IG, NS, 'good');
    const jsm = await jetstreamManager(nc);
    await assert.rejects(jsm.consumers.info('CRM_EVENTS', 'ferry_revops_good'), /consumer not found/);
    const fallback = await jsm.streams.info('FERRY_FALLBACK_revops_good');
    assert.equal(fallback.state.messages, 1);
  });
});
