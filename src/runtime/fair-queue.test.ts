import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairQueue } from './fair-queue.ts';

function drainOrder<T>(q: FairQueue<T>): T[] {
  const out: T[] = [];
  for (let item = q.shift(); item !== undefined; item = q.shift()) out.push(item);
  return out;
}

describe('FairQueue', () => {
  it('is first in, first out within one key', () => {
    const q = new FairQueue<string>();
    for (const x of ['a1', 'a2', 'a3']) q.push('a', x);
    assert.equal(q.size, 3);
    assert.deepEqual(drainOrder(q), ['a1', 'a2', 'a3']);
    assert.equal(q.size, 0);
    assert.equal(q.shift(), undefined);
  });

  it('takes turns across keys, so a key with a long line does not hold back the others', () => {
    const q = new FairQueue<string>();
    for (const x of ['a1', 'a2', 'a3', 'a4']) q.push('a', x);
    q.push('b', 'b1');
    q.push('c', 'c1');
    q.push('b', 'b2');
    assert.deepEqual(drainOrder(q), ['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4']);
  });

  it('puts a key that comes back after emptying at the end of the rotation', () => {
    const q = new FairQueue<string>();
    q.push('a', 'a1');
    q.push('b', 'b1');
    assert.equal(q.shift(), 'a1');
    q.push('a', 'a2');
    q.push('c', 'c1');
    assert.deepEqual(drainOrder(q), ['b1', 'a2', 'c1']);
  });

  it('removes a waiting item once, and keeps the rest in order', () => {
    const q = new FairQueue<{ id: string }>();
    const a1 = { id: 'a1' };
    const a2 = { id: 'a2' };
    const b1 = { id: 'b1' };
    q.push('a', a1);
    q.push('a', a2);
    q.push('b', b1);
    assert.equal(q.remove('a', a1), true);
    assert.equal(q.remove('a', a1), false, 'already removed');
    assert.equal(q.remove('c', b1), false, 'unknown key');
    assert.equal(q.remove('b', b1), true);
    assert.equal(q.size, 1);
    assert.deepEqual(drainOrder(q), [a2]);
  });

  it('hands out an item out of turn only when its key is the only one waiting', () => {
    const q = new FairQueue<string>();
    q.push('a', 'a1');
    q.push('a', 'a2');
    assert.equal(q.shiftIfOnlyKey('b'), undefined);
    assert.equal(q.shiftIfOnlyKey('a'), 'a1');
    q.push('b', 'b1');
    assert.equal(q.shiftIfOnlyKey('a'), undefined, 'b waits: a may not jump the rotation');
    assert.equal(q.size, 2);
    assert.deepEqual(drainOrder(q), ['a2', 'b1']);
  });

  it('takes back an item at the head of its line, its key served next', () => {
    const q = new FairQueue<string>();
    q.push('a', 'a2');
    q.push('b', 'b1');
    q.returnItem('c', 'c1');
    q.returnItem('a', 'a1');
    assert.equal(q.size, 4);
    assert.deepEqual(drainOrder(q), ['c1', 'a1', 'b1', 'a2']);
  });

  it('drains everything', () => {
    const q = new FairQueue<number>();
    q.push('a', 1);
    q.push('b', 2);
    q.push('a', 3);
    assert.deepEqual(q.drain().sort(), [1, 2, 3]);
    assert.equal(q.size, 0);
    assert.equal(q.shift(), undefined);
  });
});
