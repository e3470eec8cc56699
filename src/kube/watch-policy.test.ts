import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GoneError, NotFoundError } from './errors.ts';
import { isNotServed, servedTransition } from './watch-policy.ts';

describe('served state of a watched collection', () => {
  it('a 404 — typed, or as client-node Watch reports it — means not served; other failures do not', () => {
    assert.equal(isNotServed(new NotFoundError('GET /apis/ferry.dev/v1alpha1/syncschedules: 404', { method: 'GET', path: '/x', httpStatus: 404 })), true);
    assert.equal(isNotServed(Object.assign(new Error('Not Found'), { statusCode: 404 })), true);
    assert.equal(isNotServed(new GoneError('gone', { method: 'GET', path: '/x', httpStatus: 410 })), false);
    assert.equal(isNotServed(Object.assign(new Error('Service Unavailable'), { statusCode: 503 })), false);
    assert.equal(isNotServed(undefined), false);
  });

  it('never served is an error, lost after being served a warning, back again info; repeats say nothing', () => {
    assert.equal(servedTransition('unknown', 'not-served'), 'error');
    assert.equal(servedTransition('served', 'not-served'), 'warn');
    assert.equal(servedTransition('not-served', 'served'), 'info');
    assert.equal(servedTransition('unknown', 'served'), undefined);
    assert.equal(servedTransition('not-served', 'not-served'), undefined);
    assert.equal(servedTransition('served', 'served'), undefined);
  });
});
