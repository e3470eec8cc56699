import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FerryObject } from './ferry-object.ts';
import { WrittenStatus } from './written-status.ts';

const ready = { type: 'Ready', status: 'True', reason: 'Delivering', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 } as const;
const notReady = { ...ready, status: 'False', reason: 'Progressing' } as const;

function cached(resourceVersion: string, status: FerryObject['status'], uid = 'u1'): FerryObject {
  return { metadata: { namespace: 'ns', name: 'a', uid, resourceVersion, generation: 1 }, status };
}

describe('WrittenStatus', () => {
  it('while the cache still holds the version a write was based on, the write is the status', () => {
    const w = new WrittenStatus();
    const before = cached('10', { observedGeneration: 1, conditions: [notReady] });
    w.record('ns/a', before, { observedGeneration: 1, conditions: [ready], fallbackPending: 0 });
    // A requeue before the watch delivered the write: the cache is unchanged.
    assert.deepEqual(w.current('ns/a', cached('10', { observedGeneration: 1, conditions: [notReady] })), {
      observedGeneration: 1,
      conditions: [ready],
      fallbackPending: 0,
    });
  });

  it('once the cache holds any other version, the cache is the status again (and the entry is dropped)', () => {
    const w = new WrittenStatus();
    w.record('ns/a', cached('10', { conditions: [notReady] }), { conditions: [ready] });
    const caughtUp = cached('11', { conditions: [ready], stats: { delivered: 3 } });
    assert.equal(w.current('ns/a', caughtUp), caughtUp.status);
    // The entry is gone: a later read is taken from the cache whatever version it shows.
    const again = cached('10', { conditions: [notReady] });
    assert.equal(w.current('ns/a', again), again.status);
  });

  it('a re-created object (same name, new uid) is never read through an old write', () => {
    const w = new WrittenStatus();
    w.record('ns/a', cached('10', undefined, 'old'), { conditions: [ready] });
    const recreated = cached('10', undefined, 'new');
    assert.equal(w.current('ns/a', recreated), undefined);
  });

  it('applies writes as merge patches over what it knew, null removing a field, and forgets on request', () => {
    const w = new WrittenStatus();
    const obj = cached('7', { conditions: [ready], nextScheduleTime: '2026-01-01T09:00:00Z', stats: { delivered: 1 } });
    w.record('ns/a', obj, { nextScheduleTime: null, observedGeneration: 2 });
    assert.deepEqual(w.current('ns/a', obj), { conditions: [ready], stats: { delivered: 1 }, observedGeneration: 2 });
    w.record('ns/a', obj, { stats: { delivered: 2 } });
    assert.deepEqual(w.current('ns/a', obj), { conditions: [ready], stats: { delivered: 2 }, observedGeneration: 2 }, 'a second write on the same stale version builds on the first');
    w.forget('ns/a');
    assert.equal(w.current('ns/a', obj), obj.status);
  });
});
