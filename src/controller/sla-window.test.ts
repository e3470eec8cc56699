import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { degradation, runtimeStatusFields, type SlaView } from './runtime-view.ts';
import { SlaWindow, slaVerdict } from './sla-window.ts';

const policy = { deliverWithinMs: 200, maxLatePercent: 10 };

describe('SLA window', () => {
  it('counts only what finished inside the window, from cumulative counters', () => {
    const w = new SlaWindow();
    w.observe(0, 0, 0);
    w.observe(1_000, 10, 0);
    w.observe(2_000, 10, 5);
    assert.deepEqual(w.figures(2_000, 5_000), { total: 15, late: 5 }, 'window not yet covered: from the first sample');
    w.observe(6_000, 20, 5);
    // Window (1000, 6000]: baseline is the sample at 1000 (met 10, late 0).
    assert.deepEqual(w.figures(6_000, 5_000), { total: 15, late: 5 });
    w.observe(7_500, 20, 5);
    // Window (2500, 7500]: baseline at 2000 (met 10, late 5): the late ones have left it.
    assert.deepEqual(w.figures(7_500, 5_000), { total: 10, late: 0 });
    w.observe(20_000, 20, 5);
    assert.deepEqual(w.figures(20_000, 5_000), { total: 0, late: 0 }, 'nothing finished in the window');
  });

  it('keeps only the samples one window needs', () => {
    const w = new SlaWindow();
    for (let t = 0; t <= 100_000; t += 1_000) {
      w.observe(t, t / 1_000, 0);
      w.figures(t, 5_000);
    }
    // (95000, 100000]: five samples inside plus the baseline at 95000.
    assert.equal((w as unknown as { samples: unknown[] }).samples.length, 6);
    assert.deepEqual(w.figures(100_000, 5_000), { total: 5, late: 0 });
  });

  it('restarts when the counters go backwards (the shared key was removed)', () => {
    const w = new SlaWindow();
    w.observe(0, 50, 50);
    w.observe(1_000, 2, 1);
    w.observe(2_000, 4, 1);
    assert.deepEqual(w.figures(2_000, 60_000), { total: 2, late: 0 });
  });

  it('is missed above the threshold only, or while a waiting event is older than deliverWithin', () => {
    assert.equal(slaVerdict({ total: 100, late: 10 }, undefined, policy, 0).missed, false, 'exactly at the limit is not above it');
    const above = slaVerdict({ total: 100, late: 11 }, undefined, policy, 0);
    assert.equal(above.missed, true);
    assert.match(above.why ?? '', /11 of 100 events \(11%\) finished later than deliverWithin 0.2s or were parked \(limit 10%\)/);
    assert.equal(slaVerdict({ total: 0, late: 0 }, undefined, policy, 0).missed, false, 'no events: nothing missed');
    assert.equal(slaVerdict({ total: 3, late: 1 }, undefined, { deliverWithinMs: 200, maxLatePercent: 0 }, 0).missed, true, '0%: any late event');
    assert.equal(slaVerdict({ total: 1, late: 1 }, undefined, { deliverWithinMs: 200, maxLatePercent: 100 }, 0).missed, false, '100%: only a waiting event can miss');
    const waiting = slaVerdict({ total: 0, late: 0 }, 1_000, policy, 61_000);
    assert.equal(waiting.missed, true, 'an outage is seen while it lasts');
    assert.match(waiting.why ?? '', /oldest event waiting in the source stream was published 60s ago/);
    assert.equal(slaVerdict({ total: 0, late: 0 }, 1_000, policy, 1_150).missed, false, 'waiting, but not yet late');
  });

  it('turns into Degraded (SlaMissed) after every more specific reason, and into status.sla', () => {
    const now = Date.UTC(2026, 0, 1);
    const sla: SlaView = { ...policy, windowMs: 5_000, window: '5s', total: 20, late: 5 };
    const d = degradation({ sla }, now);
    assert.equal(d.reason, 'SlaMissed');
    assert.match(d.message, /^SLA missed over the last 5s: 5 of 20 events \(25%\)/);
    const open = { state: 'Open' as const, since: now, consecutiveFailures: 5, openUntil: now + 60_000 };
    assert.equal(degradation({ sla, circuit: open }, now).reason, 'CircuitOpen', 'the cause before the symptom');
    assert.equal(degradation({ sla: { ...sla, late: 1 } }, now).status, 'False', '5% is under 10%');
    assert.deepEqual(runtimeStatusFields({ sla: { ...sla, oldestPendingMs: now - 1_000 } }, now), {
      sla: { window: '5s', total: 20, late: 5, oldestPendingTime: '2025-12-31T23:59:59Z' },
    });
    assert.deepEqual(runtimeStatusFields({ sla }, now), { sla: { window: '5s', total: 20, late: 5, oldestPendingTime: null } }, 'null removes it in the merge patch');
  });
});
