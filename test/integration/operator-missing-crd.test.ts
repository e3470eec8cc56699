/**
 * An operator installed with one of its CRDs missing still runs the kinds whose CRDs are there,
 * says which CRD is missing (an error log line with the command that installs it, and /readyz),
 * and picks the missing kind up once its CRD is applied, without a restart — also with
 * --watch-namespaces, where each kind is a group of namespaced watches.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { crdDir, installCrd } from '../support/crds.ts';
import { condition, FerryClient, integrationSpec, isTrueNow } from '../support/ferry-client.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';

const execFileAsync = promisify(execFile);
const NS = 'partial';

describe('operator with a CRD missing', { timeout: 240_000 }, () => {
  let env: ControlPlane;
  let ferry: FerryClient;
  let op: OperatorProcess;
  /** Watches only namespaces of its own (and its own Lease), so it never touches `op`'s objects. */
  let scoped: OperatorProcess;
  const kubectl = (args: string[]) => execFileAsync(env.binaries.kubectl, ['--kubeconfig', env.kubeconfigPath, ...args]);

  before(async () => {
    env = await startControlPlane();
    await kubectl(['apply', '-f', join(crdDir, 'integrations.ferry.dev.yaml')]);
    await kubectl(['wait', '--for=condition=Established', 'crd/integrations.ferry.dev', '--timeout=30s']);
    await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    const nc = await connect({ servers: env.natsUrl });
    await (await jetstreamManager(nc)).streams.add({ name: 'CRM_EVENTS', subjects: ['crm.>'] });
    await nc.close();
    ferry = new FerryClient(env.kubeConfig);
    op = await startOperator({ env, identity: 'partial' });
    scoped = await startOperator({ env, identity: 'partial-scoped', args: ['--watch-namespaces=scoped-a,scoped-b', '--lease-name=ferry-scoped'] });
  });
  after(async () => {
    await scoped.stop();
    await op.stop();
    await env.stop();
  });

  it('reconciles Integrations while the SyncSchedule CRD is missing, and says what to apply', async () => {
    await ferry.create('integrations', NS, { kind: 'Integration', metadata: { name: 'orders' }, spec: integrationSpec() });
    await ferry.waitFor('integrations', NS, 'orders', (o) => isTrueNow(o, 'Ready'));

    const line = await op.waitForLog((l) => l.level === 'error' && typeof l.msg === 'string' && l.msg.includes('syncschedules.ferry.dev'));
    assert.match(String(line.msg), /kubectl apply -f crds\/syncschedules\.ferry\.dev\.yaml/);
    const ready = await op.readyz();
    assert.equal(ready.status, 503);
    assert.match(ready.body, /\[-\]crd syncschedules\.ferry\.dev failed: .*not installed.*kubectl apply -f crds\/syncschedules\.ferry\.dev\.yaml/);
    assert.match(ready.body, /\[\+\]crd integrations\.ferry\.dev ok/);

    // Namespaced watches: every namespace's list of SyncSchedules is a 404 too, and says the same.
    await scoped.waitForLog((l) => l.level === 'error' && typeof l.msg === 'string' && l.msg.includes('syncschedules.ferry.dev'));
    const scopedReady = await scoped.readyz();
    assert.equal(scopedReady.status, 503);
    assert.match(scopedReady.body, /\[-\]crd syncschedules\.ferry\.dev failed: .*not installed/);
    assert.match(scopedReady.body, /\[\+\]crd integrations\.ferry\.dev ok/);
  });

  it('picks SyncSchedules up once their CRD is applied, without a restart', async () => {
    // As a user would: `kubectl apply -f crds/syncschedules.ferry.dev.yaml`.
    await installCrd(env, 'syncschedules.ferry.dev.yaml');
    await ferry.create('syncschedules', NS, {
      kind: 'SyncSchedule',
      metadata: { name: 'contacts' },
      spec: {
        schedule: '0 9 * * *',
        source: { url: 'https://crm.example.com/api/contacts', recordsPath: '/data' },
        key: '/id',
        target: { url: 'https://erp.example.com/api/customers/{{/id}}' },
      },
    });
    const obj = await ferry.waitFor('syncschedules', NS, 'contacts', (o) => isTrueNow(o, 'Ready') || isTrueNow(o, 'Stalled'), 60_000);
    assert.equal(obj.status?.observedGeneration, 1);
    assert.equal(condition(obj, 'Ready')?.status, 'True', JSON.stringify(obj.status));

    // /readyz follows: poll, since the probe is what a kubelet polls too.
    const deadline = Date.now() + 30_000;
    let ready = await op.readyz();
    while (ready.status !== 200 && Date.now() < deadline) {
      await sleep(200);
      ready = await op.readyz();
    }
    assert.equal(ready.status, 200, ready.body);
    assert.match(ready.body, /\[\+\]crd syncschedules\.ferry\.dev ok/);
    assert.ok(op.process.running);
    // The scoped operator's group of watches is served once each of its namespaces' is.
    let scopedReady = await scoped.readyz();
    while (scopedReady.status !== 200 && Date.now() < deadline) {
      await sleep(200);
      scopedReady = await scoped.readyz();
    }
    assert.equal(scopedReady.status, 200, scopedReady.body);
    assert.ok(scoped.process.running);
    assert.ok(op.logs.some((l) => l.msg === 'resource is served' && l.resource === 'syncschedules'));
  });
});
