import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../observability/index.ts';
import { TokenCache, tokenCacheKey, tokenUsableUntil } from './token-cache.ts';

describe('tokenUsableUntil', () => {
  it('honours expires_in minus the safety margin', () => {
    assert.equal(tokenUsableUntil(0, 3600), 3_600_000 - 30_000);
    assert.equal(tokenUsableUntil(1000, 600, { safetyMarginMs: 60_000 }), 1000 + 540_000);
  });

  it('keeps short-lived tokens usable for half their life', () => {
    assert.equal(tokenUsableUntil(0, 20), 10_000);
    assert.equal(tokenUsableUntil(0, 0), 0);
  });

  it('assumes the default lifetime when expires_in is missing or nonsense', () => {
    for (const expiresIn of [undefined, Number.NaN, -5]) {
      assert.equal(tokenUsableUntil(0, expiresIn), 300_000 - 30_000);
    }
    assert.equal(tokenUsableUntil(0, undefined, { defaultLifetimeMs: 60_000 }), 30_000);
  });
});

describe('tokenCacheKey', () => {
  it('ignores scope order and duplicates, but not the client, endpoint or audience', () => {
    const k = tokenCacheKey('https://t/token', 'c1', ['b', 'a']);
    assert.equal(k, tokenCacheKey('https://t/token', 'c1', ['a', 'b', 'a']));
    assert.notEqual(k, tokenCacheKey('https://t/token', 'c2', ['a', 'b']));
    assert.notEqual(k, tokenCacheKey('https://u/token', 'c1', ['a', 'b']));
    assert.notEqual(k, tokenCacheKey('https://t/token', 'c1', ['a', 'b'], 'aud'));
    assert.notEqual(tokenCacheKey('t', 'a b', []), tokenCacheKey('t', 'a', ['b']));
  });
});

describe('TokenCache', () => {
  it('fetches once and reuses the token until it is no longer usable', async () => {
    const clock = new ManualClock(0);
    const cache = new TokenCache(clock);
    let fetches = 0;
    const fetch = () => Promise.resolve({ accessToken: `t${++fetches}`, usableUntil: clock.now() + 1000 });
    assert.equal((await cache.getOrFetch('k', fetch)).accessToken, 't1');
    await clock.advance(999);
    assert.equal((await cache.getOrFetch('k', fetch)).accessToken, 't1');
    await clock.advance(1);
    assert.equal((await cache.getOrFetch('k', fetch)).accessToken, 't2');
    assert.equal(fetches, 2);
  });

  it('shares one fetch between concurrent callers', async () => {
    const cache = new TokenCache(new ManualClock(0));
    let fetches = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const fetch = async () => {
      fetches++;
      await gate;
      return { accessToken: 'shared', usableUntil: 10_000 };
    };
    const all = Promise.all([cache.getOrFetch('k', fetch), cache.getOrFetch('k', fetch), cache.getOrFetch('k', fetch)]);
    release();
    assert.deepEqual((await all).map((t) => t.accessToken), ['shared', 'shared', 'shared']);
    assert.equal(fetches, 1);
  });

  it('does not cache a failed fetch, and every waiter sees the error', async () => {
    const cache = new TokenCache(new ManualClock(0));
    const boom = new Error('token endpoint down');
    const failing = () => Promise.reject(boom);
    await assert.rejects(Promise.all([cache.getOrFetch('k', failing), cache.getOrFetch('k', failing)]), (e) => e === boom);
    const ok = await cache.getOrFetch('k', () => Promise.resolve({ accessToken: 'ok', usableUntil: 1 }));
    assert.equal(ok.accessToken, 'ok');
  });

  it('invalidates only the exact token that was refused', async () => {
    const cache = new TokenCache(new ManualClock(0));
    await cache.getOrFetch('k', () => Promise.resolve({ accessToken: 'new', usableUntil: 10_000 }));
    assert.equal(cache.invalidate('k', 'old'), false); // a straggler's stale token: keep the fresh one
    assert.equal(cache.get('k')?.accessToken, 'new');
    assert.equal(cache.invalidate('k', 'new'), true);
    assert.equal(cache.get('k'), undefined);
  });
});
