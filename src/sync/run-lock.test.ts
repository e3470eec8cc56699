import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isHeld, isTaken } from './run-lock.ts';

describe('isTaken', () => {
  it('a slot is taken when it is at or before the last slot taken', () => {
    const lock = { lastSlot: 1_000 };
    assert.equal(isTaken(lock, { kind: 'slot', slot: 999 }), true);
    assert.equal(isTaken(lock, { kind: 'slot', slot: 1_000 }), true);
    assert.equal(isTaken(lock, { kind: 'slot', slot: 1_001 }), false);
  });

  it('nothing is taken without a record or without a last slot', () => {
    assert.equal(isTaken(undefined, { kind: 'slot', slot: 0 }), false);
    assert.equal(isTaken({}, { kind: 'slot', slot: 0 }), false);
    assert.equal(isTaken({ lastManual: 'x' }, { kind: 'slot', slot: 5 }), false);
    assert.equal(isTaken(undefined, { kind: 'manual', value: 'x' }), false);
  });

  it('a slot 0 is taken once lastSlot is 0', () => {
    assert.equal(isTaken({ lastSlot: 0 }, { kind: 'slot', slot: 0 }), true);
  });

  it('a manual trigger is taken only for the same value', () => {
    const lock = { lastManual: '2024-05-01T10:00:00Z', lastSlot: 5 };
    assert.equal(isTaken(lock, { kind: 'manual', value: '2024-05-01T10:00:00Z' }), true);
    assert.equal(isTaken(lock, { kind: 'manual', value: '2024-05-01T10:00:01Z' }), false);
    assert.equal(isTaken({ lastSlot: 5 }, { kind: 'manual', value: '' }), false);
  });
});

describe('isHeld', () => {
  const now = 1_700_000_000_000;
  it('is held while an owner has a lease ending after now', () => {
    assert.equal(isHeld({ owner: 'replica-a', expiresAt: now + 1 }, now), true);
  });

  it('is free once the lease has ended (the boundary included)', () => {
    assert.equal(isHeld({ owner: 'replica-a', expiresAt: now }, now), false);
    assert.equal(isHeld({ owner: 'replica-a', expiresAt: now - 1 }, now), false);
  });

  it('is free without a record, an owner, or a lease end', () => {
    assert.equal(isHeld(undefined, now), false);
    assert.equal(isHeld({ expiresAt: now + 60_000 }, now), false);
    assert.equal(isHeld({ owner: 'replica-a' }, now), false);
    assert.equal(isHeld({ lastSlot: 1, lastManual: 'x' }, now), false);
  });
});
