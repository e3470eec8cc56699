import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../observability/index.ts';
import { LeaseKeeper } from './lease-keeper.ts';

function message(): { working(): void; readonly count: number } {
  let count = 0;
  return {
    working: () => {
      count++;
    },
    get count() {
      return count;
    },
  };
}

describe('LeaseKeeper', () => {
  it('renews every held message every period until it is released, and never after', async () => {
    const clock = new ManualClock(0);
    const keeper = new LeaseKeeper(clock, 5_000);
    const stop = new AbortController();
    const running = keeper.start(stop.signal);
    const a = message();
    const b = message();
    const releaseA = keeper.hold(a);
    keeper.hold(b);
    await clock.advance(4_999);
    assert.equal(a.count, 0);
    await clock.advance(1);
    assert.deepEqual([a.count, b.count], [1, 1]);
    // 60 s of waiting — longer than any ack_wait — is covered by renewals every 5 s.
    await clock.advance(60_000);
    assert.deepEqual([a.count, b.count], [13, 13]);
    releaseA();
    releaseA();
    await clock.advance(10_000);
    assert.deepEqual([a.count, b.count], [13, 15]);
    assert.equal(keeper.size, 1);
    stop.abort();
    await running;
    await clock.advance(10_000);
    assert.equal(b.count, 15, 'no renewals after stop');
  });
});
