import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../observability/index.ts';
import { DeliveryConfigError } from './errors.ts';
import { TokenBucket } from './rate-limiter.ts';

describe('TokenBucket', () => {
  it('allows a burst, then the steady rate', async () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket({ perSecond: 10, burst: 5, clock });
    let taken = 0;
    while (bucket.tryTake()) taken++;
    assert.equal(taken, 5);
    assert.equal(bucket.waitTime(), 100);
    await clock.advance(99);
    assert.equal(bucket.tryTake(), false);
    await clock.advance(1);
    assert.equal(bucket.tryTake(), true);
    // Over the next 10 s exactly 100 more tokens (10/s), never more.
    let steady = 0;
    for (let ms = 0; ms < 10_000; ms += 10) {
      await clock.advance(10);
      while (bucket.tryTake()) steady++;
    }
    assert.equal(steady, 100);
  });

  it('refills to the burst and no further after a quiet period', async () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket({ perSecond: 100, burst: 3, clock });
    while (bucket.tryTake());
    await clock.advance(60_000);
    assert.equal(bucket.available, 3);
  });

  it('take() waits on the clock for the next token, in order of time', async () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket({ perSecond: 2, burst: 1, clock });
    const done: number[] = [];
    await bucket.take();
    const waiters = [bucket.take().then(() => done.push(clock.now())), bucket.take().then(() => done.push(clock.now()))];
    await clock.advance(499);
    assert.deepEqual(done, []);
    await clock.advance(1001);
    await Promise.all(waiters);
    assert.deepEqual(done, [500, 1000]);
  });

  it('take() rejects with the signal reason when aborted and takes no token', async () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket({ perSecond: 1, burst: 1, clock });
    bucket.tryTake();
    const ac = new AbortController();
    const waiting = bucket.take(ac.signal);
    const reason = new Error('shutdown');
    ac.abort(reason);
    await assert.rejects(waiting, (e) => e === reason);
    await clock.advance(1000);
    assert.equal(bucket.tryTake(), true);
    await assert.rejects(bucket.take(ac.signal), (e) => e === reason);
  });

  it('setRate() applies from now on and wakes waiters so a raised rate counts at once', async () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket({ perSecond: 0.1, burst: 1, clock }); // one token per 10 s
    bucket.tryTake();
    let woke = -1;
    const waiting = bucket.take().then(() => (woke = clock.now()));
    await clock.advance(1000);
    bucket.setRate(10); // 0.1 token already earned; 0.9 more at 10/s = 90 ms
    await clock.advance(100);
    await waiting;
    assert.equal(woke, 1090);
    assert.equal(bucket.rate, 10);
  });

  it('setRate() lowers the rate and clamps tokens to a smaller burst', () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket({ perSecond: 10, burst: 10, clock });
    bucket.setRate(1, 2);
    assert.equal(bucket.available, 2);
    while (bucket.tryTake());
    assert.equal(bucket.waitTime(), 1000);
  });

  it('refuses rates that cannot work', () => {
    const clock = new ManualClock(0);
    assert.throws(() => new TokenBucket({ perSecond: 0, burst: 1, clock }), DeliveryConfigError);
    assert.throws(() => new TokenBucket({ perSecond: 1, burst: 0.5, clock }), DeliveryConfigError);
    assert.throws(() => { new TokenBucket({ perSecond: 1, burst: 1, clock }).setRate(-1); }, DeliveryConfigError);
  });
});
