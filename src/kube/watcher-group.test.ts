import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from './object.ts';
import { StoreWriter } from './store.ts';
import type { WatchHandler } from './watcher.ts';
import { mergeStores, WatcherGroup, type WatchSource } from './watcher-group.ts';
import type { ServedState } from './watch-policy.ts';

const obj = (namespace: string, name: string): KubeObject => ({ metadata: { namespace, name, resourceVersion: '1', labels: { app: name } } });

/** A member whose store, served state and events the test drives; the group is what is under test. */
class FakeSource implements WatchSource<KubeObject> {
  readonly name = 'fake';
  readonly writer = new StoreWriter<KubeObject>({ indexers: { app: (o) => [o.metadata?.labels?.app ?? ''] } });
  readonly store = this.writer.reader;
  served: ServedState = 'unknown';
  handlers: WatchHandler<KubeObject>[] = [];
  started = 0;
  private release: () => void = () => {};
  private readonly readyPromise = new Promise<void>((resolve) => {
    this.release = resolve;
  });

  addHandler(handler: WatchHandler<KubeObject>): () => void {
    this.handlers.push(handler);
    return () => {
      this.handlers = this.handlers.filter((h) => h !== handler);
    };
  }
  start(): Promise<void> {
    this.started++;
    return Promise.resolve();
  }
  ready(): Promise<void> {
    return this.readyPromise;
  }
  sync(objs: KubeObject[], served: ServedState = 'served'): void {
    this.writer.replace(objs);
    this.served = served;
    this.release();
  }
  emit(o: KubeObject): void {
    for (const h of this.handlers) h('added', o);
  }
}

function group(): { g: WatcherGroup<KubeObject>; a: FakeSource; b: FakeSource } {
  const a = new FakeSource();
  const b = new FakeSource();
  return { g: new WatcherGroup('configmaps', new Map([['a', a], ['b', b]])), a, b };
}

describe('watcher group', () => {
  it('reads one store made of every namespace', () => {
    const { g, a, b } = group();
    a.sync([obj('a', 'x'), obj('a', 'y')]);
    b.sync([obj('b', 'x')]);
    assert.equal(g.store.get('a/x')?.metadata?.namespace, 'a');
    assert.equal(g.store.get('b/x')?.metadata?.namespace, 'b');
    assert.equal(g.store.get('b/y'), undefined);
    assert.equal(g.store.get('c/x'), undefined, 'a namespace nobody watches');
    assert.equal(g.store.get('x'), undefined, 'a cluster-scoped key');
    assert.deepEqual(g.store.keys().sort(), ['a/x', 'a/y', 'b/x']);
    assert.equal(g.store.list().length, 3);
    assert.equal(g.store.size, 3);
    assert.deepEqual(g.store.byIndex('app', 'x').map((o) => o.metadata?.namespace).sort(), ['a', 'b']);
  });

  it('is synced and ready only when every namespace is', async () => {
    const { g, a, b } = group();
    let ready = false;
    const readyPromise = g.ready(AbortSignal.timeout(60_000)).then(() => {
      ready = true;
    });
    const synced = g.store.waitForSync(AbortSignal.timeout(60_000));
    a.sync([]);
    await Promise.resolve();
    assert.equal(g.store.synced, false);
    assert.equal(ready, false);
    b.sync([]);
    await Promise.all([readyPromise, synced]);
    assert.equal(g.store.synced, true);
    assert.equal(ready, true);
  });

  it('says not-served when one namespace is not served, served when all are', () => {
    const { g, a, b } = group();
    assert.equal(g.served, 'unknown');
    a.served = 'served';
    assert.equal(g.served, 'unknown');
    b.served = 'not-served';
    assert.equal(g.served, 'not-served');
    b.served = 'served';
    assert.equal(g.served, 'served');
  });

  it('tells a handler about changes in every namespace, until removed', async () => {
    const { g, a, b } = group();
    const seen: string[] = [];
    const remove = g.addHandler((type, o) => seen.push(`${type} ${o.metadata?.namespace}/${o.metadata?.name}`));
    a.emit(obj('a', 'x'));
    b.emit(obj('b', 'y'));
    remove();
    a.emit(obj('a', 'z'));
    assert.deepEqual(seen, ['added a/x', 'added b/y']);
    await g.start(AbortSignal.timeout(60_000));
    assert.deepEqual([a.started, b.started], [1, 1]);
  });

  it('refuses an empty group', () => {
    assert.throws(() => new WatcherGroup('secrets', new Map()), TypeError);
  });

  it('merges plain stores', () => {
    const w = new StoreWriter<KubeObject>();
    w.replace([obj('n', 'o')]);
    const merged = mergeStores(new Map([['n', w.reader]]));
    assert.equal(merged.get('n/o')?.metadata?.name, 'o');
    assert.equal(merged.synced, true);
  });
});
