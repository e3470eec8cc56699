import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignReplicas, runnerCount } from './assignment.ts';

const keys = Array.from({ length: 3_000 }, (_, i) => `ns-${i % 7}/integration-${i}`);

function owners(members: readonly string[], replicas: number | 'all'): Map<string, string[]> {
  return new Map(keys.map((k) => [k, assignReplicas(k, members, replicas)]));
}

function countPerMember(assigned: Map<string, string[]>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const list of assigned.values()) for (const m of list) counts.set(m, (counts.get(m) ?? 0) + 1);
  return counts;
}

describe('assignReplicas (rendezvous hashing)', () => {
  it('caps replicas at the member count, keeps at least one, and gives all to every member', () => {
    assert.equal(runnerCount(2, 3), 2);
    assert.equal(runnerCount(5, 3), 3);
    assert.equal(runnerCount(0, 3), 1);
    assert.equal(runnerCount('all', 4), 4);
    assert.equal(runnerCount('all', 0), 1);
    assert.deepEqual(assignReplicas('ns/a', [], 1), []);
    assert.deepEqual(assignReplicas('ns/a', ['c', 'a', 'b'], 'all'), ['a', 'b', 'c']);
    assert.deepEqual(assignReplicas('ns/a', ['c', 'a', 'b'], 7), ['a', 'b', 'c']);
    assert.equal(assignReplicas('ns/a', ['a', 'b', 'c'], 2).length, 2);
    assert.equal(new Set(assignReplicas('ns/a', ['a', 'b', 'c'], 2)).size, 2);
  });

  it('does not depend on the order of the member list', () => {
    for (const k of keys.slice(0, 200)) assert.deepEqual(assignReplicas(k, ['a', 'b', 'c', 'd'], 2), assignReplicas(k, ['d', 'c', 'b', 'a'], 2));
  });

  it('balances 3,000 keys over 3 members within ±10% of a third', () => {
    const counts = countPerMember(owners(['ferry-0', 'ferry-1', 'ferry-2'], 1));
    assert.equal([...counts.values()].reduce((a, b) => a + b, 0), 3_000);
    for (const [m, n] of counts) assert.ok(n >= 900 && n <= 1_100, `${m} runs ${n} of 3,000`);
  });

  it('balances two replicas per key over 4 members within ±10% of half', () => {
    const counts = countPerMember(owners(['a', 'b', 'c', 'd'], 2));
    for (const [m, n] of counts) assert.ok(n >= 1_350 && n <= 1_650, `${m} runs ${n} of 6,000 runs`);
  });

  it('a member leaving moves only its own keys, to the survivors', () => {
    for (const replicas of [1, 2] as const) {
      const before = owners(['a', 'b', 'c'], replicas);
      const after = owners(['a', 'b'], replicas);
      for (const k of keys) {
        const was = before.get(k) ?? [];
        const now = after.get(k) ?? [];
        // Every survivor that ran the key still runs it.
        for (const m of was) if (m !== 'c') assert.ok(now.includes(m), `${k}: ${m} lost it though it stayed`);
        if (!was.includes('c')) assert.deepEqual([...now].sort(), [...was].sort(), `${k} moved though its runners stayed`);
      }
    }
  });

  it('a member joining takes about 1/n of the keys, and only from the others (no key moves between two old members)', () => {
    const before = owners(['a', 'b', 'c'], 1);
    const after = owners(['a', 'b', 'c', 'd'], 1);
    let moved = 0;
    for (const k of keys) {
      const was = before.get(k)?.[0];
      const now = after.get(k)?.[0];
      if (was === now) continue;
      moved++;
      assert.equal(now, 'd', `${k} moved from ${String(was)} to ${String(now)}, not to the new member`);
    }
    // Ideal: a quarter (750); the bound leaves room for hashing noise, far below modulo's ~75%.
    assert.ok(moved >= 650 && moved <= 850, `${moved} of 3,000 keys moved`);
  });
});
