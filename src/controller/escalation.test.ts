import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { circuitOpenMessage, fallbackGrowingMessage } from './escalation-messages.ts';
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

  it('says what happened and what to do next', () => {
    const spec = { target: { url: 'https://billing.example.com/v1/accounts/{{/customer/id}}/invoices' }, delivery: { circuitBreaker: { openFor: '2m' } } };
    const open = { state: 'Open' as const, since: 0, consecutiveFailures: 5, openUntil: 120_000, lastFailure: 'HTTP 503' };
    assert.equal(
      circuitOpenMessage(open, undefined, spec),
      "circuit open after 5 failures (last: HTTP 503 from billing.example.com); consumption paused 2m, then one probe; check the target's health — events wait in the source stream and delivery resumes on its own",
    );
    const noDetail = circuitOpenMessage({ ...open, lastFailure: undefined }, { time: 0, reason: 'retrying', message: 'connect ECONNREFUSED' }, { target: { url: '{{/host}}/x' } });
    assert.match(noDetail, /\(last: connect ECONNREFUSED from the target\); consumption paused 60s/, 'the shared error and the defaults when the spec does not say');
    assert.match(
      fallbackGrowingMessage(8, 'FERRY_FALLBACK_revops_deal', { time: 0, reason: 'rejected', message: 'HTTP 422' }),
      /^8 events parked in the fallback stream FERRY_FALLBACK_revops_deal \(last: rejected: HTTP 422\); fix the cause/,
    );
  });
});
