import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from './clock.ts';

describe('ManualClock', () => {
  it('fires timers only when advanced past their due time, in time order', async () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    clock.setTimer(() => fired.push('b@20'), 20);
    clock.setTimer(() => fired.push('a@10'), 10);
    await clock.advance(9);
    assert.deepEqual(fired, []);
    await clock.advance(11);
    assert.deepEqual(fired, ['a@10', 'b@20']);
    assert.equal(clock.now(), 20);
  });

  it('runs timers scheduled by timers within the same advance', async () => {
    const clock = new ManualClock(0);
    const at: number[] = [];
    clock.setTimer(() => {
      at.push(clock.now());
      clock.setTimer(() => at.push(clock.now()), 5);
    }, 5);
    await clock.advance(10);
    assert.deepEqual(at, [5, 10]);
  });

  it('resolves sleep after the advance and rejects it on abort', async () => {
    const clock = new ManualClock(0);
    let done = false;
    const slept = clock.sleep(100).then(() => (done = true));
    await clock.advance(99);
    assert.equal(done, false);
    await clock.advance(1);
    await slept;
    assert.equal(done, true);

    const ac = new AbortController();
    const aborted = clock.sleep(100, ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);
    assert.equal(clock.pending, 0);
  });

  it('cancels a timer', async () => {
    const clock = new ManualClock(0);
    let fired = false;
    const cancel = clock.setTimer(() => (fired = true), 1);
    cancel();
    await clock.advance(10);
    assert.equal(fired, false);
  });
});
