import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, type RetryPolicy } from './decide.ts';

const policy = { successCodes: [200, 201, 202, 204], retryOn: [408, 425, 429, '5xx', 'network', 'timeout'] as const };
const retry: RetryPolicy = {
  maxAttempts: 5,
  maxElapsedMs: 3_600_000,
  backoff: { initialMs: 1_000, maxMs: 300_000, multiplier: 2, jitter: 'none' },
  retryAfterMaxMs: 600_000,
};
const at = (attempt: number, outcome: Parameters<typeof decide>[0]['outcome'], now = 10_000) => decide({ outcome, attempt, storedAtMs: 0, now }, { ...policy, retryOn: [...policy.retryOn] }, retry);

describe('the failure contract', () => {
  it('acks a success code', () => {
    assert.deepEqual(at(1, { kind: 'status', status: 201 }), { kind: 'ack', breaker: 'success' });
  });

  it('retries 5xx with exponential backoff, then parks as exhausted at maxAttempts', () => {
    const delays = [1, 2, 3, 4].map((n) => {
      const d = at(n, { kind: 'status', status: 503 });
      assert.equal(d.kind, 'retry');
      return d.kind === 'retry' ? d.delayMs : -1;
    });
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000]);
    assert.deepEqual(at(5, { kind: 'status', status: 503 }), { kind: 'fallback', reason: 'exhausted', breaker: 'failure' });
  });

  it('parks as exhausted when the next try would start after maxElapsed', () => {
    const d = decide({ outcome: { kind: 'timeout' }, attempt: 2, storedAtMs: 0, now: 3_599_000 }, { ...policy, retryOn: [...policy.retryOn] }, retry);
    assert.deepEqual(d, { kind: 'fallback', reason: 'exhausted', breaker: 'failure' });
  });

  it('honours Retry-After on 429 up to retryAfterMax, as a throttle that is neutral for the breaker', () => {
    const d = at(1, { kind: 'status', status: 429, retryAfterMs: 30_000 });
    assert.deepEqual(d, { kind: 'retry', delayMs: 30_000, throttle: true, retryAfterMs: 30_000, breaker: 'neutral' });
    const capped = decide({ outcome: { kind: 'status', status: 429, retryAfterMs: 3_600_000 }, attempt: 1, storedAtMs: 0, now: 0 }, { ...policy, retryOn: [...policy.retryOn] }, { ...retry, retryAfterMaxMs: 60_000 });
    assert.equal(capped.kind === 'retry' && capped.delayMs, 60_000);
  });

  it('never waits less than its own backoff, whatever Retry-After says', () => {
    const d = at(4, { kind: 'status', status: 429, retryAfterMs: 0 });
    assert.equal(d.kind === 'retry' && d.delayMs, 8_000);
  });

  it('parks other 4xx and 3xx at once as rejected, and a broken response contract as contract', () => {
    assert.deepEqual(at(1, { kind: 'status', status: 400 }), { kind: 'fallback', reason: 'rejected', breaker: 'success' });
    assert.equal(at(1, { kind: 'status', status: 302 }).kind, 'fallback');
    assert.deepEqual(at(1, { kind: 'contract', status: 200 }), { kind: 'fallback', reason: 'contract', breaker: 'success' });
    assert.deepEqual(at(1, { kind: 'refused' }), { kind: 'fallback', reason: 'rejected', breaker: 'neutral' });
  });

  it('retries network errors and timeouts as breaker failures', () => {
    for (const kind of ['network', 'timeout'] as const) {
      const d = at(1, { kind });
      assert.equal(d.kind, 'retry');
      assert.equal(d.breaker, 'failure');
    }
  });
});
