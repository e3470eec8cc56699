import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WatermarkTracker, type Observed } from './watermark.ts';

/** Observes `cursors` in order and resolves them all at once. */
function observeAll(tracker: WatermarkTracker, cursors: readonly (number | undefined)[], resolve = true): Observed[] {
  const observed = cursors.map((c) => tracker.observe(c));
  if (resolve) for (const o of observed) tracker.resolve(o);
  return observed;
}

describe('WatermarkTracker', () => {
  it('is undefined before anything was observed, and after an empty complete read', () => {
    assert.equal(new WatermarkTracker().committable(false), undefined);
    assert.equal(new WatermarkTracker().committable(true), undefined);
  });

  it('never splits a group of ties across a page boundary', () => {
    const t = new WatermarkTracker();
    observeAll(t, [3, 5, 5, 5]);
    // Stopped mid-read: more 5s may follow on the next page, so W stays below 5.
    assert.equal(t.committable(false), 3);
    // A later cursor closes the group of 5s.
    observeAll(t, [6]);
    assert.equal(t.committable(false), 5);
  });

  it('a group of ties alone is not committable mid-read, but is when the read completes', () => {
    const t = new WatermarkTracker();
    observeAll(t, [5, 5, 5]);
    assert.equal(t.committable(false), undefined);
    assert.equal(t.committable(true), 5);
  });

  it('an unresolved record holds W below its group, even when later groups are resolved', () => {
    const t = new WatermarkTracker();
    const [a, b, c, d] = observeAll(t, [1, 2, 2, 3, 4], false);
    assert.ok(a && b && c && d);
    t.resolve(a);
    t.resolve(b);
    // c (cursor 2) is still open; resolving the 3 and the 5 after it does not help.
    const rest = t.observe(5);
    t.resolve(d);
    t.resolve(rest);
    assert.equal(t.committable(false), 1);
    assert.equal(t.committable(true), undefined, 'W does not move while the group of 2s is open');
    t.resolve(c);
    // Group 2 and 3 now resolved; the 4 was never resolved (observeAll with resolve=false).
    assert.equal(t.committable(true), 3);
  });

  it('moves forward across calls and never returns a lower value', () => {
    const t = new WatermarkTracker();
    observeAll(t, [10, 20]);
    assert.equal(t.committable(false), 10);
    observeAll(t, [30]);
    assert.equal(t.committable(false), 20);
    // Nothing new became committable: undefined means "do not move", never a step back.
    assert.equal(t.committable(false), undefined);
    assert.equal(t.committable(true), 30);
  });

  it('an unsorted source moves W only after a complete and fully resolved read', () => {
    const t = new WatermarkTracker();
    const observed = observeAll(t, [1, 5, 3, 7], false);
    assert.equal(t.inOrder, false);
    for (const o of observed.slice(0, 3)) t.resolve(o);
    assert.equal(t.committable(false), undefined);
    assert.equal(t.committable(true), undefined, 'one record still unresolved');
    const last = observed[3];
    assert.ok(last);
    t.resolve(last);
    assert.equal(t.committable(false), undefined, 'an incomplete read never moves W for unsorted input');
    assert.equal(t.committable(true), 7, 'the highest cursor seen');
  });

  it('stays in order for equal and increasing cursors', () => {
    const t = new WatermarkTracker();
    observeAll(t, [1, 1, 2, 2, 2, 9]);
    assert.equal(t.inOrder, true);
  });

  it('records without a cursor make the read unsorted: W only at a complete read', () => {
    const t = new WatermarkTracker();
    observeAll(t, [1, undefined, 2, 3]);
    assert.equal(t.inOrder, false);
    assert.equal(t.committable(false), undefined);
    assert.equal(t.committable(true), 3);
  });

  it('a run of records none of which has a cursor gives no watermark', () => {
    const t = new WatermarkTracker();
    observeAll(t, [undefined, undefined]);
    assert.equal(t.committable(true), undefined);
  });

  it('an unresolved record without a cursor holds a complete unsorted read', () => {
    const t = new WatermarkTracker();
    observeAll(t, [1, 2]);
    t.observe(undefined);
    assert.equal(t.committable(true), undefined);
  });

  it('keeps working past the compaction of many resolved groups', () => {
    const t = new WatermarkTracker();
    for (let c = 1; c <= 3000; c++) {
      t.resolve(t.observe(c));
      if (c % 500 === 0) assert.equal(t.committable(false), c - 1);
    }
    observeAll(t, [3000, 3000, 3001]);
    assert.equal(t.committable(false), 3000);
    assert.equal(t.committable(true), 3001);
  });
});
