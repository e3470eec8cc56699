/**
 * The watcher and a collection the API server does not serve (404), against a real API server:
 * a CRD that is not installed does not hold up `ready()` and is picked up once installed; a
 * collection that stops being served (its version switched to `served: false`, the objects still
 * in etcd) keeps its cache — no object is reported deleted — and is relisted when served again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiextensionsV1Api, CustomObjectsApi, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { Registry, silentLogger, systemClock } from '../../src/observability/index.ts';
import { Watcher, type KubeObject, type WatchEventType } from '../../src/kube/index.ts';

const GROUP = 'test.ferry.dev';

function crd(plural: string, kind: string, servedV1: boolean, resourceVersion?: string): V1CustomResourceDefinition {
  const schema = { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${GROUP}`, ...(resourceVersion === undefined ? {} : { resourceVersion }) },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        { name: 'v1', served: servedV1, storage: true, schema },
        { name: 'v2', served: true, storage: false, schema },
      ],
    },
  };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

describe('kube watcher and collections that are not served', { timeout: 180_000 }, () => {
  let env: ControlPlane;
  let crds: ApiextensionsV1Api;
  let objects: CustomObjectsApi;
  const stops: AbortController[] = [];

  before(async () => {
    env = await startControlPlane({ nats: false });
    crds = env.kubeConfig.makeApiClient(ApiextensionsV1Api);
    objects = env.kubeConfig.makeApiClient(CustomObjectsApi);
  });
  after(async () => {
    for (const s of stops) s.abort();
    await env.stop();
  });

  async function install(body: V1CustomResourceDefinition): Promise<void> {
    const name = body.metadata?.name ?? '';
    await crds.createCustomResourceDefinition({ body });
    await waitEstablished(name);
  }

  async function waitEstablished(name: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const got = await crds.readCustomResourceDefinition({ name });
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
      if (Date.now() > deadline) throw new Error(`${name} not Established`);
      await sleep(100);
    }
  }

  function watch(plural: string): { watcher: Watcher<KubeObject>; seen: { type: WatchEventType; name: string }[]; running: Promise<void> } {
    const watcher = new Watcher<KubeObject>({
      kubeConfig: env.kubeConfig,
      path: `/apis/${GROUP}/v1/${plural}`,
      resource: plural,
      notServedHint: `install ${plural}`,
      notServedPollMs: 200,
      watchTimeoutSeconds: 2,
      watchdogMs: 5_000,
      backoff: { initialMs: 50, maxMs: 200 },
      clock: systemClock,
      logger: silentLogger(),
      registry: new Registry(),
    });
    const seen: { type: WatchEventType; name: string }[] = [];
    watcher.addHandler((type, obj) => {
      seen.push({ type, name: obj.metadata?.name ?? '' });
    });
    const stop = new AbortController();
    stops.push(stop);
    return { watcher, seen, running: watcher.start(stop.signal) };
  }

  const create = (plural: string, kind: string, version: string, name: string) =>
    objects.createNamespacedCustomObject({ group: GROUP, version, namespace: 'default', plural, body: { apiVersion: `${GROUP}/${version}`, kind, metadata: { name } } });

  /** Switches whether v1 of the widgets CRD is served (the objects stay in etcd either way). */
  async function serveWidgetsV1(served: boolean): Promise<void> {
    const name = `widgets.${GROUP}`;
    const current = await crds.readCustomResourceDefinition({ name });
    await crds.replaceCustomResourceDefinition({ name, body: crd('widgets', 'Widget', served, current.metadata?.resourceVersion) });
  }

  it('a collection whose CRD is missing does not hold up ready(), and is picked up once the CRD is installed', async () => {
    const { watcher, seen } = watch('gadgets');
    await watcher.ready(AbortSignal.timeout(30_000));
    assert.equal(watcher.served, 'not-served');
    assert.equal(watcher.store.synced, false);

    await install(crd('gadgets', 'Gadget', true));
    await create('gadgets', 'Gadget', 'v1', 'g1');
    await waitFor('the new object in the cache', () => watcher.store.get('default/g1') !== undefined);
    assert.equal(watcher.served, 'served');
    assert.equal(watcher.store.synced, true);
    assert.ok(seen.some((e) => e.type === 'added' && e.name === 'g1'));
  });

  it('keeps its cache while the collection is not served, and relists (reporting only real changes) when it is again', async () => {
    await install(crd('widgets', 'Widget', true));
    await create('widgets', 'Widget', 'v1', 'w1');
    await create('widgets', 'Widget', 'v1', 'w2');
    const { watcher, seen } = watch('widgets');
    await watcher.ready(AbortSignal.timeout(30_000));
    assert.deepEqual(watcher.store.keys().sort(), ['default/w1', 'default/w2']);

    // The objects stay in etcd; only the v1 endpoint the watcher uses goes away (404).
    await serveWidgetsV1(false);
    await waitFor('the watcher to see the 404', () => watcher.served === 'not-served');
    assert.deepEqual(watcher.store.keys().sort(), ['default/w1', 'default/w2'], 'the cache is kept');
    assert.equal(watcher.store.synced, true);
    assert.ok(!seen.some((e) => e.type === 'deleted'), 'nothing reported deleted');

    // Meanwhile one object goes and one comes (through the served v2 endpoint).
    await objects.deleteNamespacedCustomObject({ group: GROUP, version: 'v2', namespace: 'default', plural: 'widgets', name: 'w2' });
    await create('widgets', 'Widget', 'v2', 'w3');
    await serveWidgetsV1(true);
    await waitFor('the relist after the collection is served again', () => watcher.served === 'served' && watcher.store.get('default/w3') !== undefined);
    assert.deepEqual(watcher.store.keys().sort(), ['default/w1', 'default/w3']);
    assert.deepEqual(
      seen.filter((e) => e.type !== 'resync').slice(2),
      [
        { type: 'added', name: 'w3' },
        { type: 'deleted', name: 'w2' },
      ],
      'only what really changed is reported',
    );
  });
});
