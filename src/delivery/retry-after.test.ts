import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackoffPolicy } from './backoff.ts';
import { parseHttpDate, parseRetryAfter, retryDelay } from './retry-after.ts';

const now = Date.UTC(2025, 9, 21, 7, 28, 0); // Tue, 21 Oct 2025 07:28:00 GMT
const opts = { now, maxMs: 600_000 };

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    assert.equal(parseRetryAfter('120', opts), 120_000);
    assert.equal(parseRetryAfter('0', opts), 0);
    assert.equal(parseRetryAfter(' 5 ', opts), 5000);
  });

  it('reads the three HTTP-date forms relative to now', () => {
    assert.equal(parseRetryAfter('Tue, 21 Oct 2025 07:28:30 GMT', opts), 30_000);
    assert.equal(parseRetryAfter('Tuesday, 21-Oct-25 07:29:00 GMT', opts), 60_000);
    assert.equal(parseRetryAfter('Tue Oct 21 07:28:10 2025', opts), 10_000);
    assert.equal(parseRetryAfter('Tue Oct  1 00:00:00 2030', { now, maxMs: Number.MAX_SAFE_INTEGER }), Date.UTC(2030, 9, 1) - now);
  });

  it('gives 0 for a date in the past', () => {
    assert.equal(parseRetryAfter('Mon, 20 Oct 2025 07:28:00 GMT', opts), 0);
  });

  it('caps at maxMs', () => {
    assert.equal(parseRetryAfter('86400', opts), 600_000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', opts), 600_000);
    assert.equal(parseRetryAfter('9'.repeat(400), opts), 600_000);
  });

  it('returns undefined for a missing header and for garbage', () => {
    const garbage = [
      ...[undefined, '', 'soon', '-5', '1.5', '1e3', '0x10', '5 seconds', 'Tue, 21 Oct 2025'],
      ...['Tue, 31 Feb 2025 07:28:00 GMT', 'Tue, 21 Oct 2025 25:00:00 GMT', 'Tue, 21 Oct 2025 07:28:00 UTC'],
    ];
    for (const value of garbage) {
      assert.equal(parseRetryAfter(value, opts), undefined, String(value));
    }
  });

  it('uses the first of repeated headers', () => {
    assert.equal(parseRetryAfter(['3', '100'], opts), 3000);
    assert.equal(parseRetryAfter([], opts), undefined);
  });
});

describe('parseHttpDate', () => {
  it('reads all three forms and nothing else', () => {
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), Date.UTC(1994, 10, 6, 8, 49, 37));
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), Date.UTC(1994, 10, 6, 8, 49, 37));
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), Date.UTC(1994, 10, 6, 8, 49, 37));
    assert.equal(parseHttpDate('2025-10-21T07:28:00Z'), undefined);
  });
});

describe('retryDelay', () => {
  const backoff: BackoffPolicy = { initialMs: 1000, maxMs: 300_000, multiplier: 2, jitter: 'none' };

  it('is the backoff when there is no Retry-After', () => {
    assert.equal(retryDelay({ attempt: 3, backoff, retryAfterMs: undefined, retryAfterMaxMs: 600_000 }), 4000);
  });

  it('is the Retry-After when it is longer than the backoff', () => {
    assert.equal(retryDelay({ attempt: 1, backoff, retryAfterMs: 30_000, retryAfterMaxMs: 600_000 }), 30_000);
  });

  it('never goes below the backoff (Retry-After: 0 cannot make Ferry hammer)', () => {
    assert.equal(retryDelay({ attempt: 4, backoff, retryAfterMs: 0, retryAfterMaxMs: 600_000 }), 8000);
  });

  it('caps the Retry-After at retryAfterMax but keeps a longer backoff', () => {
    assert.equal(retryDelay({ attempt: 1, backoff, retryAfterMs: 3_600_000, retryAfterMaxMs: 60_000 }), 60_000);
    assert.equal(retryDelay({ attempt: 9, backoff, retryAfterMs: 3_600_000, retryAfterMaxMs: 60_000 }), 256_000);
  });

  it('passes the random source to the backoff', () => {
    const full: BackoffPolicy = { ...backoff, jitter: 'full' };
    assert.equal(retryDelay({ attempt: 5, backoff: full, retryAfterMs: 100, retryAfterMaxMs: 1000, random: () => 0.5 }), 8000);
  });
});
