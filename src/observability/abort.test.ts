import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { untilAborted } from './abort.ts';

describe('untilAborted', () => {
  it('gives the work’s value when it settles first', async () => {
    assert.deepEqual(await untilAborted(Promise.resolve(7), new AbortController().signal), { aborted: false, value: 7 });
  });

  it('settles as soon as the signal aborts, while the work never does', async () => {
    const c = new AbortController();
    const waiting = untilAborted(new Promise<number>(() => {}), c.signal);
    c.abort();
    assert.deepEqual(await waiting, { aborted: true });
    assert.deepEqual(await untilAborted(Promise.resolve(1), c.signal), { aborted: true }, 'already aborted: not even looked at');
  });

  it('passes on the work’s failure', async () => {
    await assert.rejects(untilAborted(Promise.reject(new Error('boom')), new AbortController().signal), /boom/);
  });
});
