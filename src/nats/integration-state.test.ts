import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyStatsFlush, EMPTY_STATS, STATS_WRITER_TTL_MS, type SharedStats, type StatsFlush } from './integration-state.ts';

const delta = (delivered: number, lastDeliveredTime?: number): SharedStats => ({ ...EMPTY_STATS, delivered, ...(lastDeliveredTime === undefined ? {} : { lastDeliveredTime }) });
const flush = (writer: string, seq: number, d: SharedStats): StatsFlush => ({ writer, seq, delta: d });

describe('applyStatsFlush', () => {
  it('adds a flush once: the same flush retried after its reply was lost changes nothing', () => {
    const first = applyStatsFlush(undefined, flush('a', 1, delta(100, 5)), 1_000);
    assert.equal(first.delivered, 100);
    assert.deepEqual(first.writers, { a: { seq: 1, at: 1_000 } });
    const retried = applyStatsFlush(first, flush('a', 1, delta(100, 5)), 2_000);
    assert.equal(retried, first, 'the stored value, unchanged');
    const next = applyStatsFlush(retried, flush('a', 2, delta(7, 9)), 3_000);
    assert.equal(next.delivered, 107);
    assert.equal(next.lastDeliveredTime, 9);
  });

  it('keeps writers apart: replicas add up, each counted once', () => {
    let s = applyStatsFlush(undefined, flush('a', 1, delta(10)), 0);
    s = applyStatsFlush(s, flush('b', 1, delta(5)), 1);
    s = applyStatsFlush(s, flush('a', 1, delta(10)), 2);
    s = applyStatsFlush(s, flush('b', 2, delta(1)), 3);
    assert.equal(s.delivered, 16);
    assert.deepEqual(Object.keys(s.writers ?? {}).sort(), ['a', 'b']);
  });

  it('forgets writers idle for longer than the TTL, never the one writing', () => {
    let s = applyStatsFlush(undefined, flush('old', 1, delta(1)), 0);
    s = applyStatsFlush(s, flush('new', 1, delta(1)), STATS_WRITER_TTL_MS);
    assert.deepEqual(Object.keys(s.writers ?? {}), ['new']);
    assert.equal(s.delivered, 2, 'forgetting a writer keeps its counts');
  });

  it('adds the SLA counters of every replica, and adds none for an Integration without an SLA', () => {
    let s = applyStatsFlush(undefined, flush('a', 1, delta(3)), 0);
    assert.equal('slaMet' in s, false, 'no SLA counters until one is counted');
    s = applyStatsFlush(s, flush('a', 2, { ...delta(2), slaMet: 1, slaLate: 1 }), 1);
    s = applyStatsFlush(s, flush('b', 1, { ...delta(4), slaMet: 4, slaLate: 0 }), 2);
    s = applyStatsFlush(s, flush('b', 1, { ...delta(4), slaMet: 4, slaLate: 0 }), 3);
    assert.deepEqual([s.slaMet, s.slaLate], [5, 1]);
    s = applyStatsFlush(s, flush('a', 3, delta(1)), 4);
    assert.deepEqual([s.slaMet, s.slaLate], [5, 1], 'kept by a flush without SLA counters');
  });
});
