import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EscalationLimiter, fallbackWarning } from './escalation.ts';

describe('escalation policy', () => {
  it('allows one Warning per key per interval, however often the state is entered', () => {
    const l = new EscalationLimiter(600_000);
    let now = 0;
    let allowed = 0;
    // A circuit that opens every 10 s for an hour.
    for (; now < 3_600_000; now += 10_000) if (l.allow('uid/CircuitOpen', now)) allowed++;
    assert.equal(allowed, 6, 'once per 10 minutes');
    assert.equal(l.allow('uid/SlaMissed', now), true, 'another reason is not held back');
    assert.equal(l.allow('other/CircuitOpen', now), true, 'another object is not held back');
  });

  it('forgets the oldest keys past its bound', () => {
    const l = new EscalationLimiter(600_000, 2);
    assert.equal(l.allow('a', 0), true);
    assert.equal(l.allow('b', 0), true);
    assert.equal(l.allow('c', 0), true);
    assert.equal(l.allow('a', 1), true, 'evicted: allowed again');
    assert.equal(l.allow('c', 1), false);
  });

  it('warns about the fallback stream on the first parked event, then at each doubling', () => {
    let warned: number | undefined;
    const warnedAt: number[] = [];
    for (let pending = 0; pending <= 100; pending++) {
      const w = fallbackWarning(warned, pending);
      warned = w.warned;
      if (w.warn) warnedAt.push(pending);
    }
    assert.deepEqual(warnedAt, [1, 2, 4, 8, 16, 32, 64]);
    // Redriven down to 10: growth is measured from there.
    let w = fallbackWarning(warned, 10);
    assert.deepEqual(w, { warn: false, warned: 10 });
    w = fallbackWarning(w.warned, 19);
    assert.equal(w.warn, false);
    assert.equal(fallbackWarning(w.warned, 20).warn, true);
    // Emptied: the next parked event is news again.
    assert.deepEqual(fallbackWarning(64, 0), { warn: false, warned: undefined });
    assert.equal(fallbackWarning(undefined, 1).warn, true);
  });
});
