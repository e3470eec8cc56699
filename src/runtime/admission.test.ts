import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker, TokenBucket } from '../delivery/index.ts';
import { ManualClock } from '../observability/index.ts';
import { Admission } from './admission.ts';

function setup(options: { rate?: { perSecond: number; burst: number } } = {}) {
  const clock = new ManualClock(0);
  const breaker = new CircuitBreaker({ key: 'ns/x', failures: 2, windowMs: 30_000, openForMs: 10_000, clock });
  const bucket = options.rate ? new TokenBucket({ ...options.rate, clock }) : undefined;
  return { clock, breaker, admission: new Admission(clock, breaker, bucket) };
}

/** Starts a wait and reports when (on the manual clock) it was admitted. */
function admittedAt(clock: ManualClock, admission: Admission, signal = new AbortController().signal): { readonly at: number | undefined; readonly error: unknown } {
  const state: { at: number | undefined; error: unknown } = { at: undefined, error: undefined };
  admission.wait(signal).then(
    () => {
      state.at = clock.now();
    },
    (err: unknown) => {
      state.error = err;
    },
  );
  return state;
}

describe('Admission', () => {
  it('admits at once when nothing holds (no promise hop)', () => {
    const { admission } = setup();
    assert.equal(admission.tryNow(), true);
    assert.equal(admission.tryNow(), true);
  });

  it('holds every attempt until a throttle hold ends, and a shorter hold does not shorten it', async () => {
    const { clock, admission } = setup();
    admission.holdUntil(5_000);
    admission.holdUntil(2_000);
    assert.equal(admission.tryNow(), false);
    const w = admittedAt(clock, admission);
    await clock.advance(4_999);
    assert.equal(w.at, undefined);
    await clock.advance(1);
    assert.equal(w.at, 5_000);
  });

  it('waits for a rate-limit token', async () => {
    const { clock, admission } = setup({ rate: { perSecond: 2, burst: 1 } });
    assert.equal(admission.tryNow(), true);
    assert.equal(admission.tryNow(), false);
    const w = admittedAt(clock, admission);
    await clock.advance(499);
    assert.equal(w.at, undefined);
    await clock.advance(1);
    assert.equal(w.at, 500);
  });

  it('an open circuit admits nothing until openFor has passed, then exactly one probe', async () => {
    const { clock, breaker, admission } = setup();
    for (let i = 0; i < 2; i++) {
      assert.ok(admission.tryNow());
      breaker.record('failure');
    }
    assert.equal(breaker.snapshot().state, 'Open');
    const a = admittedAt(clock, admission);
    const b = admittedAt(clock, admission);
    await clock.advance(9_999);
    assert.deepEqual([a.at, b.at], [undefined, undefined]);
    await clock.advance(1_000);
    // One probe (HalfOpen); the other waits for its verdict.
    assert.equal([a.at, b.at].filter((t) => t !== undefined).length, 1);
    breaker.record('success');
    await clock.advance(1_000);
    assert.ok(a.at !== undefined && b.at !== undefined, 'the success closed the circuit for the other one');
  });

  it('wake() lets waiters through at once after the circuit was reset (new credentials)', async () => {
    const { clock, breaker, admission } = setup();
    for (let i = 0; i < 2; i++) {
      admission.tryNow();
      breaker.record('failure');
    }
    const w = admittedAt(clock, admission);
    await clock.advance(100);
    assert.equal(w.at, undefined);
    breaker.reset();
    admission.wake();
    await clock.advance(0);
    assert.equal(w.at, 100, 'not after the next one-second look, not after openFor');
  });

  it('rejects a waiter when stopping', async () => {
    const { clock, admission } = setup();
    admission.holdUntil(60_000);
    const stop = new AbortController();
    const w = admittedAt(clock, admission, stop.signal);
    stop.abort(new Error('stopping'));
    await clock.advance(0);
    assert.equal(w.at, undefined);
    assert.match(String(w.error), /stopping/);
  });
});
