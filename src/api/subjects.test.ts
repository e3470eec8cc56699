import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { subjectCaptured, subjectMatches } from './subjects.ts';

describe('subjectMatches', () => {
  it('matches literals, * for one token and > for one or more', () => {
    assert.equal(subjectMatches('orders.created', 'orders.created'), true);
    assert.equal(subjectMatches('orders.created', 'orders.updated'), false);
    assert.equal(subjectMatches('orders.*', 'orders.created'), true);
    assert.equal(subjectMatches('orders.*', 'orders.created.eu'), false);
    assert.equal(subjectMatches('orders.>', 'orders.created.eu'), true);
    assert.equal(subjectMatches('orders.>', 'orders'), false);
    assert.equal(subjectMatches('>', 'orders'), true);
    assert.equal(subjectMatches('orders.created.eu', 'orders.created'), false);
    assert.equal(subjectCaptured(['a.b', 'hooks.*'], 'hooks.github'), true);
    assert.equal(subjectCaptured(['a.b'], 'hooks.github'), false);
  });
});
