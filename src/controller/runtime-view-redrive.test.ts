import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SharedRedrive } from '../nats/index.ts';
import { lastRedriveStatus, redriveEndedEvent, runtimeStatusFields } from './runtime-view.ts';

describe('runtime view: redrive', () => {
  const at = Date.UTC(2026, 0, 1);
  const record: SharedRedrive = {
    request: 'r1',
    result: 'Partial',
    holder: 'ferry-0',
    runId: 'run',
    expiresAt: at + 15_000,
    startedAt: at,
    completedAt: at + 2_000,
    upToSequence: 100,
    nextSequence: 101,
    selected: 3,
    delivered: 2,
    failedAgain: 1,
    message: '3 selected, 2 delivered, 1 failed again',
  };

  it('writes status.lastRedrive without the lease and progress internals', () => {
    assert.deepEqual(lastRedriveStatus(record), {
      request: 'r1',
      result: 'Partial',
      startedAt: '2026-01-01T00:00:00Z',
      completedAt: '2026-01-01T00:00:02Z',
      selected: 3,
      delivered: 2,
      failedAgain: 1,
      message: '3 selected, 2 delivered, 1 failed again',
    });
    assert.deepEqual(runtimeStatusFields({ redrive: record }, at).lastRedrive, lastRedriveStatus(record));
  });

  it('an ended redrive has an Event with its counts and what to do next; a running one has none', () => {
    assert.equal(redriveEndedEvent({ ...record, result: 'Running' }), undefined);
    const partial = redriveEndedEvent(record);
    assert.equal(partial?.type, 'Warning');
    assert.equal(partial?.reason, 'RedrivePartial');
    assert.match(partial?.note ?? '', /2 delivered, 1 failed again .*redrive again/);
    assert.deepEqual([redriveEndedEvent({ ...record, result: 'Succeeded' })?.type, redriveEndedEvent({ ...record, result: 'Succeeded' })?.reason], ['Normal', 'RedriveSucceeded']);
    assert.equal(redriveEndedEvent({ ...record, result: 'Failed' })?.reason, 'RedriveFailed');
    assert.match(redriveEndedEvent({ ...record, result: 'Invalid', message: 'annotation ferry.dev/redrive-sequences: bad' })?.note ?? '', /ferry\.dev\/redrive-sequences.*new value/);
  });
});
