import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffCeiling, backoffDelay, validateBackoffPolicy, type BackoffPolicy } from './backoff.ts';
import { DeliveryConfigError } from './errors.ts';

const policy = (jitter: BackoffPolicy['jitter']): BackoffPolicy => ({ initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter });

/** A deterministic source in [0, 1) so "many samples" is reproducible. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('backoffDelay', () => {
  it('grows exponentially from the initial delay without jitter', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy('none'))),
      [1000, 2000, 4000, 8000, 16_000],
    );
  });

  it('is capped at maxMs, even for huge attempt numbers', () => {
    assert.equal(backoffDelay(7, policy('none')), 60_000); // 64 s > 60 s
    assert.equal(backoffDelay(10_000, policy('none')), 60_000);
    assert.equal(backoffDelay(10_000, policy('full'), () => 0.999_999), 59_999);
  });

  it('treats attempts below 1 as the first attempt', () => {
    assert.equal(backoffCeiling(0, policy('none')), 1000);
    assert.equal(backoffCeiling(-3, policy('none')), 1000);
  });

  it('full jitter stays within [0, ceiling] and covers the range over many samples', () => {
    const random = seeded(42);
    for (const attempt of [1, 3, 8]) {
      const ceiling = backoffCeiling(attempt, policy('full'));
      const samples = Array.from({ length: 2000 }, () => backoffDelay(attempt, policy('full'), random));
      assert.ok(samples.every((d) => d >= 0 && d <= ceiling && Number.isInteger(d)));
      // Uniform: both the bottom and the top tenth of the range are hit.
      assert.ok(samples.some((d) => d < ceiling * 0.1));
      assert.ok(samples.some((d) => d > ceiling * 0.9));
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      assert.ok(Math.abs(mean - ceiling / 2) < ceiling * 0.05, `mean ${mean} near ${ceiling / 2}`);
    }
  });

  it('equal jitter stays within [ceiling/2, ceiling]', () => {
    const random = seeded(7);
    const ceiling = backoffCeiling(4, policy('equal'));
    const samples = Array.from({ length: 2000 }, () => backoffDelay(4, policy('equal'), random));
    assert.ok(samples.every((d) => d >= ceiling / 2 && d <= ceiling));
    assert.ok(samples.some((d) => d < ceiling * 0.55));
  });

  it('uses the injected random source at the bounds', () => {
    assert.equal(backoffDelay(3, policy('full'), () => 0), 0);
    assert.equal(backoffDelay(3, policy('equal'), () => 0), 2000);
  });
});

describe('validateBackoffPolicy', () => {
  it('rejects policies that cannot work, naming the option', () => {
    const bad: [Partial<BackoffPolicy>, string][] = [
      [{ initialMs: -1 }, 'backoff.initial'],
      [{ maxMs: 10 }, 'backoff.max'],
      [{ multiplier: 0.5 }, 'backoff.multiplier'],
      [{ multiplier: Number.NaN }, 'backoff.multiplier'],
    ];
    for (const [override, option] of bad) {
      assert.throws(
        () => { validateBackoffPolicy({ ...policy('full'), ...override }); },
        (e: unknown) => e instanceof DeliveryConfigError && e.option === option,
      );
    }
    validateBackoffPolicy(policy('full'));
  });
});
