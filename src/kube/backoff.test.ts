import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, backoffDelay } from './backoff.ts';
import { classifyCleanClose, classifyWatchError, planRestart } from './watch-policy.ts';

describe('backoff', () => {
  it('doubles from the initial delay and stays at the cap', () => {
    const b = new Backoff({ initialMs: 800, maxMs: 30_000 });
    assert.deepEqual(
      Array.from({ length: 8 }, () => b.next()),
      [800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000],
    );
    b.reset();
    assert.equal(b.next(), 800);
  });

  it('jitter adds up to +100% but never passes the cap', () => {
    const opts = { initialMs: 800, maxMs: 30_000, jitter: 1 };
    assert.equal(backoffDelay({ ...opts, random: () => 0 }, 0), 800);
    assert.equal(backoffDelay({ ...opts, random: () => 0.5 }, 0), 1_200);
    assert.equal(backoffDelay({ ...opts, random: () => 0.999 }, 10), 30_000);
  });

  it('does not overflow for huge attempt numbers', () => {
    assert.equal(backoffDelay({ initialMs: 5, maxMs: 1_000_000 }, 5_000), 1_000_000);
  });
});

describe('watcher restart policy', () => {
  it('restarts after every failure with backoff; a 410 also relists', () => {
    for (const end of ['error', 'closed', 'watchdog', 'timeout'] as const) {
      assert.deepEqual(planRestart(end, 1_000, 120_000), { relist: false, backoff: true, resetBackoff: false, count: true }, end);
    }
    assert.deepEqual(planRestart('gone', undefined, 120_000), { relist: true, backoff: true, resetBackoff: false, count: true });
  });

  it('resets the backoff after a healthy period', () => {
    assert.equal(planRestart('error', 119_999, 120_000).resetBackoff, false);
    assert.equal(planRestart('error', 120_000, 120_000).resetBackoff, true);
    assert.equal(planRestart('error', undefined, 120_000).resetBackoff, false, 'never came up');
  });

  it('resumes an expired watch at once and does not count it', () => {
    assert.deepEqual(planRestart('expired', 5_000, 120_000), { relist: false, backoff: false, resetBackoff: false, count: false });
    assert.equal(planRestart('stopped', 5_000, 120_000).count, false);
  });

  it('tells a watch the server ended on time from one that closed early', () => {
    assert.equal(classifyCleanClose(20_000, 20), 'expired');
    assert.equal(classifyCleanClose(18_500, 20), 'expired');
    assert.equal(classifyCleanClose(2_000, 20), 'closed');
  });

  it('classifies what client-node reports', () => {
    assert.equal(classifyWatchError(Object.assign(new Error('Gone'), { statusCode: 410 })), 'gone');
    assert.equal(classifyWatchError(Object.assign(new Error('Internal'), { statusCode: 500 })), 'error');
    assert.equal(classifyWatchError(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), 'timeout');
    assert.equal(classifyWatchError(new Error('ECONNREFUSED')), 'error');
  });
});
