import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SharedKv } from '../nats/index.ts';
import { createLogger, ManualClock } from '../observability/index.ts';
import { FIRST_READ_RETRY_MS, HEARTBEAT_MS, memberName, Membership } from './membership.ts';

/** The members bucket: keys present, as the heartbeats of other replicas leave them. */
function fakeKv(others: Set<string>, fail: { now: boolean }): { kv: SharedKv; own: Set<string> } {
  const own = new Set<string>();
  const kv = {
    put: (key: string): Promise<void> => {
      if (fail.now) return Promise.reject(new Error('bucket not found'));
      own.add(key);
      return Promise.resolve();
    },
    keys: (): Promise<string[]> => Promise.resolve([...others, ...own]),
    delete: (key: string): Promise<void> => {
      own.delete(key);
      return Promise.resolve();
    },
  } as unknown as SharedKv;
  return { kv, own };
}

describe('Membership', () => {
  it('counts itself alone until the first read, then lists the live set sorted and says when it changes', async () => {
    const clock = new ManualClock(0);
    const others = new Set(['ferry-2', 'ferry-0']);
    const fail = { now: true };
    const { kv, own } = fakeKv(others, fail);
    const m = new Membership({ kv, identity: 'ferry 1', clock, logger: createLogger({ level: 'silent' }) });
    assert.equal(m.self, memberName('ferry 1'));
    assert.equal(m.self, 'ferry_1');
    let changes = 0;
    m.onChange(() => {
      changes++;
    });
    const stop = new AbortController();
    const running = m.start(stop.signal);
    let settled = false;
    void m.settled(stop.signal).then(() => {
      settled = true;
    });
    await clock.advance(0);
    assert.deepEqual(m.members(), ['ferry_1']);
    assert.equal(settled, false, 'a failed heartbeat is no read');

    fail.now = false;
    // Until the first read, retried quickly: pipelines wait for it.
    await clock.advance(FIRST_READ_RETRY_MS);
    assert.deepEqual(m.members(), ['ferry-0', 'ferry-2', 'ferry_1']);
    assert.equal(m.count, 3);
    assert.equal(settled, true);
    assert.equal(changes, 1);

    await clock.advance(HEARTBEAT_MS);
    assert.equal(changes, 1, 'the same set is no change');
    others.delete('ferry-2');
    await clock.advance(HEARTBEAT_MS);
    assert.deepEqual(m.members(), ['ferry-0', 'ferry_1']);
    assert.equal(changes, 2);

    stop.abort();
    await clock.advance(0);
    await running;
    assert.equal(own.size, 0, 'a replica stopping removes its heartbeat at once');
  });
});
