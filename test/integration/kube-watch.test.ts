/**
 * The watcher against a real kube-apiserver + etcd: the store converges on adds, changes and
 * deletes; the watch survives an API server restart; a 410 Gone leads to a relist that finds
 * what happened while no watch ran; the watchdog restarts a silent stream; a watch the server
 * ends on time resumes without counting as a restart.
 *
 * The same control plane also checks what reconcilers write with: ObjectClient (status and
 * merge patches, typed errors) and EventRecorder (series instead of duplicate Events).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, EventsV1Api } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { Registry, createLogger, silentLogger, systemClock } from '../../src/observability/index.ts';
import {
  AlreadyExistsError,
  ConflictError,
  EventRecorder,
  InvalidError,
  NotFoundError,
  ObjectClient,
  Watcher,
  type KubeObject,
  type ObjectRef,
  type WatchEventType,
  type WatcherOptions,
} from '../../src/kube/index.ts';

interface ConfigMap extends KubeObject {
  readonly data?: Record<string, string>;
}

interface Seen {
  readonly type: WatchEventType;
  readonly name: string;
  readonly data: Record<string, string> | undefined;
  readonly oldData: Record<string, string> | undefined;
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Polls a condition of a real server; there is no event to await across a process restart. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe('kube watcher (real API server)', { timeout: 240_000 }, () => {
  let env: ControlPlane;
  let core: CoreV1Api;

  before(async () => {
    env = await startControlPlane({ nats: false });
    core = env.kubeConfig.makeApiClient(CoreV1Api);
  });
  after(async () => {
    await env.stop();
  });

  async function namespace(name: string): Promise<void> {
    await core.createNamespace({ body: { metadata: { name } } });
  }

  function startWatcher(
    ns: string,
    options: Partial<WatcherOptions<ConfigMap>> = {},
  ): { watcher: Watcher<ConfigMap>; registry: Registry; seen: Seen[]; stop: () => Promise<void> } {
    const registry = new Registry();
    const watcher = new Watcher<ConfigMap>({
      kubeConfig: env.kubeConfig,
      path: `/api/v1/namespaces/${ns}/configmaps`,
      resource: 'configmaps',
      backoff: { initialMs: 100, maxMs: 1_000, jitter: 0 },
      clock: systemClock,
      // FERRY_TEST_LOG=debug shows the watcher's own account of restarts and relists.
      logger: process.env.FERRY_TEST_LOG ? createLogger({ level: process.env.FERRY_TEST_LOG, name: ns }) : silentLogger(),
      registry,
      ...options,
    });
    const seen: Seen[] = [];
    watcher.addHandler((type, obj, old) => {
      seen.push({ type, name: obj.metadata?.name ?? '', data: obj.data, oldData: old?.data });
    });
    const ac = new AbortController();
    const running = watcher.start(ac.signal);
    return {
      watcher,
      registry,
      seen,
      stop: async () => {
        ac.abort();
        await running;
      },
    };
  }

  it('lists in pages, then sees adds, changes and deletes; the store converges', async () => {
    await namespace('w-basic');
    for (let i = 0; i < 5; i++) {
      await core.createNamespacedConfigMap({ namespace: 'w-basic', body: { metadata: { name: `pre-${i}` }, data: { i: String(i) } } });
    }
    const { watcher, seen, registry, stop } = startWatcher('w-basic', { pageSize: 2 });
    try {
      await watcher.ready(AbortSignal.timeout(30_000));
      assert.equal(watcher.store.size, 5, 'all pages listed');
      assert.deepEqual(watcher.store.get('w-basic/pre-3')?.data, { i: '3' });
      assert.equal(watcher.store.get('w-basic/pre-3')?.kind, 'ConfigMap', 'list items get their kind');
      assert.equal(seen.filter((s) => s.type === 'added').length, 5);

      await core.createNamespacedConfigMap({ namespace: 'w-basic', body: { metadata: { name: 'a' }, data: { v: '1' } } });
      await waitFor('a added', () => watcher.store.get('w-basic/a') !== undefined);
      await core.patchNamespacedConfigMap(
        { namespace: 'w-basic', name: 'a', body: [{ op: 'replace', path: '/data/v', value: '2' }] },
      );
      await waitFor('a modified', () => watcher.store.get('w-basic/a')?.data?.v === '2');
      await core.deleteNamespacedConfigMap({ namespace: 'w-basic', name: 'a' });
      await waitFor('a deleted', () => watcher.store.get('w-basic/a') === undefined);

      const forA = seen.filter((s) => s.name === 'a');
      assert.deepEqual(
        forA.map((s) => s.type),
        ['added', 'modified', 'deleted'],
      );
      assert.deepEqual(forA[1]?.oldData, { v: '1' }, 'modified carries the old object');
      assert.deepEqual(forA[1].data, { v: '2' });
      assert.equal(watcher.store.size, 5);
      assert.equal(await metric(registry, 'ferry_watch_restarts_total', {}), 0);
    } finally {
      await stop();
    }
  });

  it('resumes a watch the server ends on time without a relist or a restart, and resyncs periodically', async () => {
    await namespace('w-expire');
    await core.createNamespacedConfigMap({ namespace: 'w-expire', body: { metadata: { name: 'early' } } });
    const { watcher, registry, seen, stop } = startWatcher('w-expire', { watchTimeoutSeconds: 1, watchdogMs: 5_000, resyncMs: 1_000 });
    try {
      await watcher.ready(AbortSignal.timeout(30_000));
      await sleep(3_500); // three server-side expiries, three resyncs
      await core.createNamespacedConfigMap({ namespace: 'w-expire', body: { metadata: { name: 'late' } } });
      await waitFor('late seen', () => watcher.store.get('w-expire/late') !== undefined);
      assert.equal(await metric(registry, 'ferry_watch_restarts_total', {}), 0);
      assert.deepEqual(
        seen.filter((s) => s.name === 'early').map((s) => s.type).slice(0, 3),
        ['added', 'resync', 'resync'],
        'listed once (no relist), then re-emitted by the resync',
      );
      assert.equal(seen.filter((s) => s.name === 'early' && s.type === 'added').length, 1);
    } finally {
      await stop();
    }
  });

  it('recovers after an API server restart and sees objects created after it', async () => {
    await namespace('w-restart');
    const { watcher, registry, stop } = startWatcher('w-restart');
    try {
      await watcher.ready(AbortSignal.timeout(30_000));
      const before = await metric(registry, 'ferry_watch_restarts_total', {});
      await env.restartApiServer();
      await core.createNamespacedConfigMap({ namespace: 'w-restart', body: { metadata: { name: 'after-restart' } } });
      await waitFor('after-restart seen', () => watcher.store.get('w-restart/after-restart') !== undefined, 60_000);
      assert.ok((await metric(registry, 'ferry_watch_restarts_total', {})) > before, 'the restart was counted');
    } finally {
      await stop();
    }
  });

  it('on 410 Gone relists and finds what changed while no watch ran', async () => {
    await namespace('w-gone');
    await core.createNamespacedConfigMap({ namespace: 'w-gone', body: { metadata: { name: 'keep' } } });
    await core.createNamespacedConfigMap({ namespace: 'w-gone', body: { metadata: { name: 'doomed' } } });
    const { watcher, registry, seen, stop } = startWatcher('w-gone');
    try {
      await watcher.ready(AbortSignal.timeout(30_000));
      assert.equal(watcher.store.size, 2);

      // With the API server down, delete an object behind its back (in etcd) and compact etcd's
      // history. The restarted API server's watch cache starts at the current revision, so the
      // watcher's resourceVersion is too old: 410 Gone. Only a relist can reveal the delete.
      await env.processes.apiServer?.stop();
      const deleted = await etcd<{ deleted?: string; header: { revision: string } }>('/v3/kv/deleterange', {
        key: Buffer.from('/registry/configmaps/w-gone/doomed').toString('base64'),
      });
      assert.equal(deleted.deleted, '1');
      await etcd('/v3/kv/compaction', { revision: deleted.header.revision, physical: true });
      await env.restartApiServer();

      await waitFor('doomed gone from the store', () => watcher.store.get('w-gone/doomed') === undefined, 60_000);
      assert.ok(watcher.store.get('w-gone/keep'));
      assert.ok(seen.some((s) => s.type === 'deleted' && s.name === 'doomed'), 'the relist reported the delete');
      assert.ok((await metric(registry, 'ferry_watch_restarts_total', { reason: 'gone' })) >= 1, 'restarted for 410');

      await core.createNamespacedConfigMap({ namespace: 'w-gone', body: { metadata: { name: 'fresh' } } });
      await waitFor('fresh seen', () => watcher.store.get('w-gone/fresh') !== undefined);
    } finally {
      await stop();
    }
  });

  it('the watchdog restarts a stream that stays silent, and the watcher keeps working', async () => {
    await namespace('w-silent');
    // The server would end each watch after 20 s; the watchdog gives up on silence after 1 s.
    const { watcher, registry, stop } = startWatcher('w-silent', { watchTimeoutSeconds: 20, watchdogMs: 1_000 });
    try {
      await watcher.ready(AbortSignal.timeout(30_000));
      await waitFor('two watchdog restarts', async () => (await metric(registry, 'ferry_watch_restarts_total', { reason: 'watchdog' })) >= 2, 20_000);
      await core.createNamespacedConfigMap({ namespace: 'w-silent', body: { metadata: { name: 'still-seen' } } });
      await waitFor('still-seen', () => watcher.store.get('w-silent/still-seen') !== undefined);
    } finally {
      await stop();
    }
  });

  describe('object writes and events', () => {
    const crds = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };
    const widgets = { group: 'test.ferry.dev', version: 'v1', plural: 'widgets' };

    interface Widget extends KubeObject {
      readonly spec?: { size?: number };
      readonly status?: { observedGeneration?: number; phase?: string };
    }

    let objects: ObjectClient;

    before(async () => {
      objects = new ObjectClient({ kubeConfig: env.kubeConfig, clock: systemClock });
      await objects.create(crds, undefined, {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: 'widgets.test.ferry.dev' },
        spec: {
          group: 'test.ferry.dev',
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              subresources: { status: {} },
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: { type: 'object', properties: { size: { type: 'integer', minimum: 0 } } },
                    status: { type: 'object', properties: { observedGeneration: { type: 'integer' }, phase: { type: 'string' } } },
                  },
                },
              },
            },
          ],
        },
      } as KubeObject);
      await waitFor('the CRD to be served', async () => {
        try {
          await objects.get({ ...widgets, namespace: 'default', name: 'probe' });
        } catch (err) {
          // 404 for the object (not for the resource type) once the CRD is established: both are
          // NotFound, so check the Status details name the object.
          return err instanceof NotFoundError && err.status?.details?.name === 'probe';
        }
        return true;
      });
      await namespace('objects');
    });

    it('patches status through the subresource and metadata under a resourceVersion precondition', async () => {
      const ref: ObjectRef = { ...widgets, namespace: 'objects', name: 'w1' };
      const created = await objects.create<Widget>(widgets, 'objects', {
        apiVersion: 'test.ferry.dev/v1',
        kind: 'Widget',
        metadata: { name: 'w1' },
        spec: { size: 1 },
      });
      await assert.rejects(objects.create(widgets, 'objects', { apiVersion: 'test.ferry.dev/v1', kind: 'Widget', metadata: { name: 'w1' } }), AlreadyExistsError);

      const withStatus = await objects.patchStatus<Widget>(ref, { observedGeneration: 1, phase: 'Ready' });
      assert.deepEqual(withStatus.status, { observedGeneration: 1, phase: 'Ready' });
      // The status subresource ignores anything but status.
      const sneaky = await objects.patchStatus<Widget>(ref, { phase: 'Again' });
      assert.equal(sneaky.spec?.size, 1);
      assert.equal(sneaky.metadata?.generation, 1, 'status writes do not bump the generation');

      // A stale resourceVersion is a typed, retryable conflict; the current one succeeds.
      const stale = created.metadata?.resourceVersion ?? '';
      const conflict = await objects.patchMerge(ref, { metadata: { finalizers: ['ferry.dev/cleanup'] } }, { resourceVersion: stale }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(conflict instanceof ConflictError, String(conflict));
      assert.equal(conflict.retryable, true);
      const current = await objects.get<Widget>(ref);
      const patched = await objects.patchMerge<Widget>(ref, { metadata: { finalizers: ['ferry.dev/cleanup'] } }, {
        resourceVersion: current.metadata?.resourceVersion ?? '',
      });
      assert.deepEqual(patched.metadata?.finalizers, ['ferry.dev/cleanup']);

      const invalid = await objects.patchMerge(ref, { spec: { size: -1 } }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(invalid instanceof InvalidError, String(invalid));
      assert.equal(invalid.retryable, false);

      assert.equal(await objects.delete(ref), true, 'deletion started (the finalizer holds it)');
      await objects.patchMerge(ref, { metadata: { finalizers: null } });
      await waitFor('w1 gone', async () => objects.get(ref).then(() => false, (err: unknown) => err instanceof NotFoundError));
      assert.equal(await objects.delete(ref), false, 'already gone');
    });

    it('records an Event once and counts repeats in its series; never throws', async () => {
      const registry = new Registry();
      const recorder = new EventRecorder({
        kubeConfig: env.kubeConfig,
        reportingInstance: 'replica-a',
        clock: systemClock,
        logger: silentLogger(),
        registry,
      });
      const cm = await core.createNamespacedConfigMap({ namespace: 'objects', body: { metadata: { name: 'subject' } } });
      const regarding = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'subject', namespace: 'objects', uid: cm.metadata?.uid } };
      const warning = { type: 'Warning', reason: 'CircuitOpened', note: 'target failed 5 times in 30s' } as const;
      await recorder.record(regarding, warning);
      await Promise.all([recorder.record(regarding, warning), recorder.record(regarding, warning)]);
      await recorder.record(regarding, { type: 'Normal', reason: 'CircuitClosed', note: 'probe succeeded' });
      // A failure (no such namespace) is logged and counted, not thrown.
      await recorder.record({ kind: 'ConfigMap', namespace: 'no-such-namespace', name: 'x' }, warning);

      const list = await env.kubeConfig.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: 'objects' });
      const opened = list.items.filter((e) => e.reason === 'CircuitOpened');
      assert.equal(opened.length, 1, 'repeats did not create new Events');
      assert.equal(opened[0]?.series?.count, 3);
      assert.equal(opened[0].regarding?.uid, cm.metadata?.uid);
      assert.equal(opened[0].reportingController, 'ferry.dev/operator');
      assert.equal(opened[0].reportingInstance, 'replica-a');
      assert.equal(list.items.filter((e) => e.reason === 'CircuitClosed').length, 1);
      assert.equal(await metric(registry, 'ferry_kube_events_total', { outcome: 'created' }), 2);
      assert.equal(await metric(registry, 'ferry_kube_events_total', { outcome: 'series' }), 2);
      assert.equal(await metric(registry, 'ferry_kube_events_total', { outcome: 'failed' }), 1);
    });
  });

  async function etcd<T = unknown>(path: string, body: unknown): Promise<T> {
    const res = await fetch(`${env.etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, 200, `${path}: ${text}`);
    return JSON.parse(text) as T;
  }
});
