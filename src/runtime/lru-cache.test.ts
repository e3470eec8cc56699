import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LruCache } from './lru-cache.ts';

describe('LruCache', () => {
  it('makes a value once per key', () => {
    const cache = new LruCache<number>(4);
    let made = 0;
    const make = (): number => ++made;
    assert.equal(cache.getOrCreate('a', make), 1);
    assert.equal(cache.getOrCreate('a', make), 1);
    assert.equal(made, 1);
  });

  it('forgets the least recently used key when full', () => {
    const cache = new LruCache<string>(2);
    cache.getOrCreate('a', () => 'A');
    cache.getOrCreate('b', () => 'B');
    // Using `a` makes `b` the least recently used.
    cache.getOrCreate('a', () => 'A again');
    cache.getOrCreate('c', () => 'C');
    assert.equal(cache.size, 2);
    assert.ok(cache.has('a'));
    assert.ok(!cache.has('b'));
    assert.ok(cache.has('c'));
    assert.equal(cache.getOrCreate('a', () => 'new'), 'A');
  });

  it('stores nothing when making the value throws', () => {
    const cache = new LruCache<string>(2);
    assert.throws(() =>
      cache.getOrCreate('bad', () => {
        throw new Error('does not compile');
      }),
    );
    assert.equal(cache.size, 0);
    assert.equal(cache.getOrCreate('bad', () => 'fixed'), 'fixed');
  });

  it('refuses a capacity below one', () => {
    assert.throws(() => new LruCache(0), RangeError);
    assert.throws(() => new LruCache(1.5), RangeError);
  });
});
