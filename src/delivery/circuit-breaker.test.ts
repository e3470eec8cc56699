import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../observability/index.ts';
import { CircuitBreaker, type CircuitTransition } from './circuit-breaker.ts';
import { DeliveryConfigError } from './errors.ts';

function setup(overrides: Partial<{ failures: number; windowMs: number; openForMs: number; probeTimeoutMs: number }> = {}) {
  const clock = new ManualClock(0);
  const transitions: CircuitTransition[] = [];
  const breaker = new CircuitBreaker({
    key: 'revops/deal-to-invoice',
    failures: 3,
    windowMs: 30_000,
    openForMs: 60_000,
    clock,
    onTransition: (t) => transitions.push(t),
    ...overrides,
  });
  const fail = (n: number): void => {
    for (let i = 0; i < n; i++) {
      assert.ok(breaker.tryAcquire());
      breaker.record('failure');
    }
  };
  return { clock, transitions, breaker, fail };
}

describe('CircuitBreaker', () => {
  it('opens after `failures` failures within the window', () => {
    const { breaker, transitions, fail } = setup();
    fail(2);
    assert.equal(breaker.snapshot().state, 'Closed');
    fail(1);
    const s = breaker.snapshot();
    assert.equal(s.state, 'Open');
    assert.equal(s.consecutiveFailures, 3);
    assert.equal(s.openUntil, 60_000);
    assert.equal(breaker.tryAcquire(), false);
    assert.deepEqual(
      transitions.map((t) => [t.from, t.to, t.reason, t.key]),
      [['Closed', 'Open', 'failures', 'revops/deal-to-invoice']],
    );
  });

  it('does not open when the failures are spread wider than the window', async () => {
    const { breaker, clock, fail } = setup();
    fail(1);
    await clock.advance(20_000);
    fail(1);
    await clock.advance(15_000); // the first failure is now 35 s old
    fail(1);
    assert.equal(breaker.snapshot().state, 'Closed');
    assert.equal(breaker.snapshot().consecutiveFailures, 3);
    await clock.advance(10_000); // failures at 20 s, 35 s, 45 s: within 30 s
    fail(1);
    assert.equal(breaker.snapshot().state, 'Open');
  });

  it('does not count neutral verdicts (429) as failures', () => {
    const { breaker, fail } = setup();
    fail(2);
    for (let i = 0; i < 10; i++) {
      assert.ok(breaker.tryAcquire());
      breaker.record('neutral');
    }
    assert.equal(breaker.snapshot().state, 'Closed');
    assert.equal(breaker.snapshot().consecutiveFailures, 2);
  });

  it('clears the failure count on success', () => {
    const { breaker, fail } = setup();
    fail(2);
    breaker.record('success');
    fail(2);
    assert.equal(breaker.snapshot().state, 'Closed');
    assert.equal(breaker.snapshot().consecutiveFailures, 2);
  });

  it('turns HalfOpen after openFor and admits exactly one probe', async () => {
    const { breaker, clock, transitions, fail } = setup();
    fail(3);
    await clock.advance(59_999);
    assert.equal(breaker.tryAcquire(), false);
    await clock.advance(1);
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.snapshot().state, 'HalfOpen');
    assert.equal(breaker.tryAcquire(), false);
    assert.equal(breaker.tryAcquire(), false);
    assert.equal(transitions.at(-1)?.reason, 'open-elapsed');
  });

  it('closes when the probe succeeds', async () => {
    const { breaker, clock, transitions, fail } = setup();
    fail(3);
    await clock.advance(60_000);
    assert.ok(breaker.tryAcquire());
    breaker.record('success');
    const s = breaker.snapshot();
    assert.equal(s.state, 'Closed');
    assert.equal(s.consecutiveFailures, 0);
    assert.equal(s.since, 60_000);
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.tryAcquire(), true);
    assert.deepEqual(transitions.map((t) => t.reason), ['failures', 'open-elapsed', 'probe-succeeded']);
  });

  it('opens again for openFor when the probe fails', async () => {
    const { breaker, clock, transitions, fail } = setup();
    fail(3);
    await clock.advance(60_000);
    assert.ok(breaker.tryAcquire());
    breaker.record('failure');
    const s = breaker.snapshot();
    assert.equal(s.state, 'Open');
    assert.equal(s.openUntil, 120_000);
    assert.equal(s.consecutiveFailures, 4);
    assert.equal(breaker.tryAcquire(), false);
    assert.deepEqual(transitions.map((t) => `${t.from}->${t.to}:${t.reason}`), [
      'Closed->Open:failures',
      'Open->HalfOpen:open-elapsed',
      'HalfOpen->Open:probe-failed',
    ]);
  });

  it('frees the probe slot on a neutral probe result and on a lost probe', async () => {
    const { breaker, clock, fail } = setup({ probeTimeoutMs: 5000 });
    fail(3);
    await clock.advance(60_000);
    assert.ok(breaker.tryAcquire());
    breaker.record('neutral'); // the probe got a 429
    assert.equal(breaker.snapshot().state, 'HalfOpen');
    assert.ok(breaker.tryAcquire());
    assert.equal(breaker.tryAcquire(), false);
    await clock.advance(5000); // that probe never reported
    assert.ok(breaker.tryAcquire());
  });

  it('ignores failures of stragglers while Open', () => {
    const { breaker, fail } = setup();
    fail(3);
    const before = breaker.snapshot();
    breaker.record('failure');
    assert.equal(breaker.snapshot().openUntil, before.openUntil);
  });

  it('adopts a state written by another replica and reports it as adopted', async () => {
    const { breaker, clock, transitions } = setup();
    breaker.adopt({ state: 'Open', since: 0, consecutiveFailures: 5, openUntil: 10_000 });
    assert.equal(breaker.tryAcquire(), false);
    assert.equal(transitions.at(-1)?.reason, 'adopted');
    await clock.advance(10_000);
    assert.equal(breaker.tryAcquire(), true);
    breaker.adopt({ state: 'Closed', since: 10_000, consecutiveFailures: 0, openUntil: undefined });
    assert.equal(breaker.snapshot().state, 'Closed');
  });

  it('reset closes an open breaker at once, forgets its failures and admits everything', () => {
    const { breaker, transitions, fail } = setup();
    fail(3);
    assert.equal(breaker.snapshot().state, 'Open');
    breaker.reset();
    assert.equal(breaker.snapshot().state, 'Closed');
    assert.equal(breaker.snapshot().consecutiveFailures, 0);
    assert.equal(transitions.at(-1)?.reason, 'reset');
    assert.ok(breaker.tryAcquire() && breaker.tryAcquire());
    // The old failures no longer count: two more do not reopen it.
    fail(2);
    assert.equal(breaker.snapshot().state, 'Closed');
    const before = transitions.length;
    breaker.reset();
    assert.equal(transitions.length, before, 'no transition when already Closed');
  });

  it('refuses a policy that cannot work', () => {
    assert.throws(() => setup({ failures: 0 }), DeliveryConfigError);
    assert.throws(() => setup({ windowMs: 0 }), DeliveryConfigError);
    assert.throws(() => setup({ openForMs: Number.NaN }), DeliveryConfigError);
  });
});
