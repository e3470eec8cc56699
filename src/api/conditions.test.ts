import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConditionType,
  Reason,
  conditionSchema,
  findCondition,
  isConditionCurrent,
  isConditionTrue,
  removeCondition,
  setCondition,
  type Condition,
} from './conditions.ts';
import { ConditionInvalidError } from './errors.ts';

const t0 = Date.UTC(2024, 5, 1, 12, 0, 0, 250);
const t1 = t0 + 60_000;

describe('setCondition', () => {
  it('adds a new condition stamped with the generation and the time, in metav1 format', () => {
    const list = setCondition(undefined, { type: 'Ready', status: 'Unknown', reason: Reason.Progressing, message: 'starting' }, 3, t0);
    assert.deepEqual(list, [
      { type: 'Ready', status: 'Unknown', observedGeneration: 3, lastTransitionTime: '2024-06-01T12:00:00Z', reason: 'Progressing', message: 'starting' },
    ]);
    assert.ok(conditionSchema.safeParse(list[0]).success);
  });

  it('keeps lastTransitionTime when only reason, message or generation change', () => {
    const first = setCondition([], { type: 'Ready', status: 'True', reason: Reason.Delivering, message: 'ok' }, 1, t0);
    const second = setCondition(first, { type: 'Ready', status: 'True', reason: Reason.Reconciled, message: 'still ok' }, 2, new Date(t1));
    const [ready] = second;
    assert.ok(ready);
    assert.equal(ready.lastTransitionTime, '2024-06-01T12:00:00Z');
    assert.equal(ready.observedGeneration, 2);
    assert.equal(ready.reason, 'Reconciled');
    assert.equal(ready.message, 'still ok');
  });

  it('moves lastTransitionTime when the status flips', () => {
    const first = setCondition([], { type: 'Stalled', status: 'False', reason: Reason.Reconciled, message: '' }, 1, t0);
    const second = setCondition(first, { type: 'Stalled', status: 'True', reason: Reason.SpecInvalid, message: 'spec.target.url: bad' }, 1, t1);
    assert.equal(second[0]?.lastTransitionTime, '2024-06-01T12:01:00Z');
  });

  it('returns a new list, leaves the input untouched and keeps the order of other conditions', () => {
    let list: Condition[] = [];
    for (const type of [ConditionType.Ready, ConditionType.Reconciling, ConditionType.Stalled, ConditionType.Degraded]) {
      list = setCondition(list, { type, status: 'False', reason: Reason.Reconciled, message: '' }, 1, t0);
    }
    const snapshot = structuredClone(list);
    const next = setCondition(list, { type: 'Reconciling', status: 'True', reason: Reason.Progressing, message: 'generation 2' }, 2, t1);
    assert.notEqual(next, list);
    assert.deepEqual(list, snapshot);
    assert.deepEqual(next.map((c) => c.type), ['Ready', 'Reconciling', 'Stalled', 'Degraded']);
    assert.equal(next[1]?.status, 'True');
    assert.deepEqual(next[0], list[0]);
    assert.notEqual(next[0], list[0], 'other conditions are copies, not shared objects');
  });

  it('cuts messages longer than metav1.Condition allows', () => {
    const list = setCondition([], { type: 'Degraded', status: 'True', reason: Reason.FallbackGrowing, message: '😀'.repeat(40_000) }, 1, t0);
    const message = list[0]?.message ?? '';
    assert.equal(Array.from(message).length, 32_768);
    assert.ok(message.endsWith('…'));
    assert.ok(conditionSchema.safeParse(list[0]).success);
  });

  it('refuses reasons and types the API server would reject', () => {
    assert.throws(() => setCondition([], { type: 'Ready', status: 'True', reason: 'not camel case', message: '' }, 1, t0), {
      name: 'ConditionInvalidError',
      code: 'FERRY_CONDITION_INVALID',
      field: 'reason',
    });
    assert.throws(() => setCondition([], { type: '', status: 'True', reason: 'Ok', message: '' }, 1, t0), (err: unknown) => err instanceof ConditionInvalidError && err.field === 'type');
  });

  it('accepts every exported reason', () => {
    for (const reason of Object.values(Reason)) {
      assert.doesNotThrow(() => setCondition([], { type: 'Ready', status: 'True', reason, message: '' }, 1, t0), reason);
    }
  });
});

describe('condition queries', () => {
  const list = setCondition(
    setCondition([], { type: 'Ready', status: 'True', reason: Reason.Delivering, message: '' }, 4, t0),
    { type: 'Degraded', status: 'False', reason: Reason.Healthy, message: '' },
    3,
    t0,
  );

  it('finds conditions by type', () => {
    assert.equal(findCondition(list, 'Degraded')?.reason, 'Healthy');
    assert.equal(findCondition(list, 'Stalled'), undefined);
    assert.equal(findCondition(undefined, 'Ready'), undefined);
  });

  it('tells whether a condition is True', () => {
    assert.equal(isConditionTrue(list, 'Ready'), true);
    assert.equal(isConditionTrue(list, 'Degraded'), false);
    assert.equal(isConditionTrue(list, 'Stalled'), false);
  });

  it('tells whether a condition describes the current generation', () => {
    const degraded = findCondition(list, 'Degraded');
    assert.ok(degraded);
    assert.equal(isConditionCurrent(degraded, 3), true);
    assert.equal(isConditionCurrent(degraded, 4), false);
    const { observedGeneration: _, ...withoutGeneration } = degraded;
    assert.equal(isConditionCurrent(withoutGeneration, 9), true);
  });

  it('removes a condition without touching the input', () => {
    const without = removeCondition(list, 'Ready');
    assert.deepEqual(without.map((c) => c.type), ['Degraded']);
    assert.equal(list.length, 2);
  });
});
