import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../observability/index.ts';
import { RequestBucket } from './admission.ts';

describe('RequestBucket', () => {
  it('admits a burst, then the steady rate, and says when to retry', async () => {
    const clock = new ManualClock(0);
    const bucket = new RequestBucket(2, 3, clock);
    for (let i = 0; i < 3; i++) assert.equal(bucket.tryTake().ok, true);
    assert.deepEqual(bucket.tryTake(), { ok: false, retryAfterSeconds: 1 });
    await clock.advance(500);
    assert.equal(bucket.tryTake().ok, true, 'one token after half a second at 2/s');
    assert.equal(bucket.tryTake().ok, false);
    await clock.advance(60_000);
    for (let i = 0; i < 3; i++) assert.equal(bucket.tryTake().ok, true, 'refills up to the burst only');
    assert.equal(bucket.tryTake().ok, false);
    const slow = new RequestBucket(0.1, 1, clock);
    slow.tryTake();
    assert.deepEqual(slow.tryTake(), { ok: false, retryAfterSeconds: 10 });
  });
});
