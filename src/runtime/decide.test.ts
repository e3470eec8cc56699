import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, type AttemptFacts, type RetryPolicy } from './decide.ts';

const policy = { successCodes: [200, 201, 202, 204], retryOn: [408, 425, 429, '5xx', 'network', 'timeout'] as ('5xx' | 'network' | 'timeout' | number)[] };
const retry: RetryPolicy = {
  maxAttempts: 5,
  maxElapsedMs: 3_600_000,
  backoff: { initialMs: 1_000, maxMs: 300_000, multiplier: 2, jitter: 'none' },
  retryAfterMaxMs: 600_000,
  circuitBreaker: { openForMs: 60_000 },
};
const facts = (attempt: number, outcome: AttemptFacts['outcome'], more: Partial<AttemptFacts> = {}): AttemptFacts => ({
  outcome,
  attempt,
  firstAttemptMs: 0,
  now: 10_000,
  authFailures: 0,
  othersDeliveredSinceAuthFailure: false,
  ...more,
});
const at = (attempt: number, outcome: AttemptFacts['outcome'], now = 10_000) => decide(facts(attempt, outcome, { now }), policy, retry);

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

  it('parks as exhausted when the next try would start more than maxElapsed after the FIRST attempt', () => {
    const late = decide(facts(2, { kind: 'timeout' }, { firstAttemptMs: 0, now: 3_599_000 }), policy, retry);
    assert.deepEqual(late, { kind: 'fallback', reason: 'exhausted', breaker: 'failure' });
    // An event that waited in its stream for longer than maxElapsed (a suspended Integration, a
    // backlog) is retried normally: the clock starts at its first attempt, not when it was stored.
    const backlog = decide(facts(1, { kind: 'timeout' }, { firstAttemptMs: 100_000_000, now: 100_000_000 }), policy, retry);
    assert.equal(backlog.kind, 'retry');
  });

  it('honours Retry-After on 429 up to retryAfterMax, as a throttle that is neutral for the breaker', () => {
    const d = at(1, { kind: 'status', status: 429, retryAfterMs: 30_000 });
    assert.deepEqual(d, { kind: 'retry', delayMs: 30_000, throttle: true, retryAfterMs: 30_000, unauthorized: false, breaker: 'neutral' });
    const capped = decide(facts(1, { kind: 'status', status: 429, retryAfterMs: 3_600_000 }, { now: 0 }), policy, { ...retry, retryAfterMaxMs: 60_000 });
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

  it('keeps an event refused with 401/403 in its source for as long as the credentials are wrong, as a breaker failure', () => {
    for (const status of [401, 403]) {
      // Far past maxAttempts and maxElapsed: wrong credentials never park an event.
      const d = decide(facts(0, { kind: 'status', status }, { authFailures: 50, firstAttemptMs: 0, now: 10 * 3_600_000 }), policy, retry);
      assert.equal(d.kind, 'retry');
      assert.equal(d.kind === 'retry' && d.unauthorized, true);
      assert.equal(d.breaker, 'failure');
      // Never longer than the breaker's openFor: new credentials are picked up quickly.
      assert.equal(d.kind === 'retry' && d.delayMs, 60_000);
    }
    const first = decide(facts(0, { kind: 'status', status: 401 }, { authFailures: 1 }), policy, retry);
    assert.equal(first.kind === 'retry' && first.delayMs, 1_000);
  });

  it('rejects an event refused maxAttempts times while other events were delivered with the same credentials', () => {
    const d = decide(facts(0, { kind: 'status', status: 403 }, { authFailures: 5, othersDeliveredSinceAuthFailure: true }), policy, retry);
    assert.deepEqual(d, { kind: 'fallback', reason: 'rejected', breaker: 'failure' });
    const notYet = decide(facts(0, { kind: 'status', status: 403 }, { authFailures: 4, othersDeliveredSinceAuthFailure: true }), policy, retry);
    assert.equal(notYet.kind, 'retry');
  });
});
