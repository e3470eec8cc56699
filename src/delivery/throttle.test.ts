import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../observability/index.ts';
import { perReplicaShare, ThrottleController } from './throttle.ts';

describe('ThrottleController', () => {
  it('runs at the configured rate until a throttle', () => {
    const t = new ThrottleController({ perSecond: 50 }, new ManualClock(0));
    assert.equal(t.currentRate(), 50);
    assert.equal(t.state(), undefined);
  });

  it('halves the rate on a 429 and holds it until limitedUntil (from Retry-After)', async () => {
    const clock = new ManualClock(0);
    const t = new ThrottleController({ perSecond: 50 }, clock);
    const update = t.onThrottle(10_000);
    assert.equal(update.decreased, true);
    assert.deepEqual(update.state, { perSecond: 25, limitedUntil: 10_000, decreasedAt: 0 });
    await clock.advance(9_999);
    assert.equal(t.currentRate(), 25);
    assert.deepEqual(t.state(), update.state);
  });

  it('recovers additively, one step per interval, up to the configured rate', async () => {
    const clock = new ManualClock(0);
    const t = new ThrottleController({ perSecond: 50, recoveryStep: 5, recoveryIntervalMs: 1000 }, clock);
    t.onThrottle(2000);
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      seen.push(t.currentRate());
      await clock.advance(1000);
    }
    assert.deepEqual(seen, [25, 25, 25, 30, 35, 40, 45, 50]);
    await clock.advance(60_000);
    assert.equal(t.currentRate(), 50);
    assert.equal(t.state(), undefined);
  });

  it('treats a burst of 429s within the cooldown as one decrease', async () => {
    const clock = new ManualClock(0);
    const t = new ThrottleController({ perSecond: 64, cooldownMs: 1000 }, clock);
    t.onThrottle(1000);
    for (let i = 0; i < 15; i++) {
      await clock.advance(10);
      const u = t.onThrottle(5000);
      assert.equal(u.decreased, false);
    }
    assert.equal(t.currentRate(), 32);
    assert.equal(t.state()?.limitedUntil, 150 + 5000); // extended by the latest Retry-After
    await clock.advance(1000);
    assert.equal(t.onThrottle().decreased, true);
    assert.equal(t.currentRate(), 16);
  });

  it('never goes below the floor', async () => {
    const clock = new ManualClock(0);
    const t = new ThrottleController({ perSecond: 100, minPerSecond: 10, cooldownMs: 0 }, clock);
    for (let i = 0; i < 20; i++) {
      t.onThrottle();
      await clock.advance(1);
    }
    assert.equal(t.currentRate(), 10);
  });

  it('decreases from the partly recovered rate, not the configured one', async () => {
    const clock = new ManualClock(0);
    const t = new ThrottleController({ perSecond: 40, recoveryStep: 4, recoveryIntervalMs: 1000 }, clock);
    t.onThrottle(1000); // 20
    await clock.advance(3000); // 20 + 2 steps = 28
    assert.equal(t.currentRate(), 28);
    t.onThrottle(1000);
    assert.equal(t.currentRate(), 14);
  });

  it('adopts the state another replica published, so all replicas agree', async () => {
    const clock = new ManualClock(0);
    const a = new ThrottleController({ perSecond: 50 }, clock);
    const b = new ThrottleController({ perSecond: 50 }, clock);
    b.adopt(a.onThrottle(3000).state);
    assert.equal(b.currentRate(), a.currentRate());
    await clock.advance(5000);
    assert.equal(b.currentRate(), a.currentRate());
    assert.ok(b.currentRate() > 25);
    b.adopt(undefined);
    assert.equal(b.currentRate(), 50);
  });
});

describe('perReplicaShare', () => {
  it('divides the shared rate by the live members, treating none as one', () => {
    assert.equal(perReplicaShare(50, 2), 25);
    assert.equal(perReplicaShare(50, 3), 50 / 3);
    assert.equal(perReplicaShare(50, 0), 50);
  });
});
