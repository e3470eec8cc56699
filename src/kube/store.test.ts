import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from './object.ts';
import { StoreWriter } from './store.ts';

interface Cm extends KubeObject {
  readonly data?: Record<string, string>;
}

const cm = (namespace: string, name: string, rv: string, data: Record<string, string> = {}): Cm => ({
  metadata: { namespace, name, resourceVersion: rv },
  data,
});

describe('store', () => {
  it('keys objects by namespace/name and name for cluster-scoped ones', () => {
    const w = new StoreWriter<Cm>();
    w.apply(cm('ns', 'a', '1'));
    w.apply({ metadata: { name: 'cluster-thing', resourceVersion: '2' } });
    assert.equal(w.reader.get('ns/a')?.metadata?.resourceVersion, '1');
    assert.ok(w.reader.get('cluster-thing'));
    assert.deepEqual(w.reader.keys().sort(), ['cluster-thing', 'ns/a']);
  });

  it('replace reports what a relist discovered and swaps the content', () => {
    const w = new StoreWriter<Cm>();
    w.replace([cm('ns', 'keep', '1'), cm('ns', 'change', '1'), cm('ns', 'gone', '1')]);
    const changes = w.replace([cm('ns', 'keep', '1'), cm('ns', 'change', '2'), cm('ns', 'new', '3')]);
    assert.deepEqual(changes.added.map((o) => o.metadata?.name), ['new']);
    assert.deepEqual(changes.modified.map((m) => [m.obj.metadata?.resourceVersion, m.old.metadata?.resourceVersion]), [['2', '1']]);
    assert.deepEqual(changes.deleted.map((o) => o.metadata?.name), ['gone']);
    assert.deepEqual(w.reader.keys().sort(), ['ns/change', 'ns/keep', 'ns/new']);
  });

  it('is synced after the first replace and wakes waiters', async () => {
    const w = new StoreWriter<Cm>();
    assert.equal(w.reader.synced, false);
    const ac = new AbortController();
    const waiting = w.reader.waitForSync(ac.signal);
    w.apply(cm('ns', 'a', '1'));
    assert.equal(w.reader.synced, false, 'a single event is not a full list');
    w.replace([]);
    await waiting;
    assert.equal(w.reader.synced, true);
  });

  it('waitForSync rejects when its signal aborts', async () => {
    const w = new StoreWriter<Cm>();
    const ac = new AbortController();
    const waiting = w.reader.waitForSync(ac.signal);
    ac.abort(new Error('shutting down'));
    await assert.rejects(waiting, /shutting down/);
  });

  it('maintains indices through apply, delete and replace', () => {
    const w = new StoreWriter<Cm>({ indexers: { secret: (o) => (o.data?.secret ? [o.data.secret] : []) } });
    w.apply(cm('ns', 'a', '1', { secret: 's1' }));
    w.apply(cm('ns', 'b', '1', { secret: 's1' }));
    assert.deepEqual(w.reader.byIndex('secret', 's1').map((o) => o.metadata?.name).sort(), ['a', 'b']);
    w.apply(cm('ns', 'a', '2', { secret: 's2' }));
    assert.deepEqual(w.reader.byIndex('secret', 's1').map((o) => o.metadata?.name), ['b']);
    w.delete('ns/b');
    assert.deepEqual(w.reader.byIndex('secret', 's1'), []);
    w.replace([cm('ns', 'c', '3', { secret: 's2' })]);
    assert.deepEqual(w.reader.byIndex('secret', 's2').map((o) => o.metadata?.name), ['c']);
    assert.throws(() => w.reader.byIndex('nope', 'x'), TypeError);
  });
});
