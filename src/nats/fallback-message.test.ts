import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fallbackHeaders, fallbackMsgId } from './fallback-message.ts';

describe('fallback message', () => {
  const facts = {
    integration: 'revops/deal-to-invoice',
    reason: 'rejected' as const,
    error: 'HTTP 400',
    httpStatus: 400,
    responseBody: '{"error":\n"bad"}',
    attempts: 1,
    firstAttemptMs: Date.UTC(2026, 0, 1),
    lastAttemptMs: Date.UTC(2026, 0, 1, 0, 0, 1),
    sourceStream: 'CRM_EVENTS',
    sourceSequence: 42,
    sourceSubject: 'crm.deals.closed',
    idempotencyKey: 'deal-1-invoice',
  };

  it('carries every Ferry header and keeps the original ones, except the old dedup id', () => {
    const h = fallbackHeaders(new Map([['Nats-Msg-Id', ['deal-1']], ['X-Trace', ['abc']], ['Ferry-Reason', ['spoofed']]]), facts);
    const one = (k: string): string | undefined => h.get(k)?.[0];
    assert.equal(one('X-Trace'), 'abc');
    assert.equal(h.get('Nats-Msg-Id'), undefined);
    assert.equal(one('Ferry-Reason'), 'rejected');
    assert.equal(one('Ferry-Integration'), 'revops/deal-to-invoice');
    assert.equal(one('Ferry-Http-Status'), '400');
    assert.equal(one('Ferry-Response-Body'), '{"error": "bad"}', 'one line');
    assert.equal(one('Ferry-Attempts'), '1');
    assert.equal(one('Ferry-First-Attempt'), '2026-01-01T00:00:00.000Z');
    assert.equal(one('Ferry-Last-Attempt'), '2026-01-01T00:00:01.000Z');
    assert.equal(one('Ferry-Source-Stream'), 'CRM_EVENTS');
    assert.equal(one('Ferry-Source-Sequence'), '42');
    assert.equal(one('Ferry-Source-Subject'), 'crm.deals.closed');
    assert.equal(one('Ferry-Idempotency-Key'), 'deal-1-invoice');
    assert.equal(one('Ferry-Source-Msg-Id'), 'deal-1', 'the original dedup id, under a name the server ignores');
  });

  it('drops every header the server interprets on publish, so a parked event is never refused for them', () => {
    const original = new Map<string, readonly string[]>([
      ['Nats-Expected-Last-Subject-Sequence', ['7']],
      ['nats-expected-stream', ['OTHER']],
      ['Nats-TTL', ['1s']],
      ['Nats-Rollup', ['sub']],
      ['Nats-Marker-Reason', ['MaxAge']],
      ['X-Keep', ['yes']],
    ]);
    const h = fallbackHeaders(original, facts);
    assert.deepEqual([...h.keys()].filter((k) => !k.startsWith('Ferry-')), ['X-Keep']);
  });

  it('says no attempt was made for an event parked before delivery', () => {
    const h = fallbackHeaders(undefined, { ...facts, reason: 'rejected', attempts: 0, firstAttemptMs: undefined, lastAttemptMs: undefined });
    assert.equal(h.get('Ferry-Attempts')?.[0], '0');
    assert.equal(h.has('Ferry-First-Attempt'), false);
    assert.equal(h.has('Ferry-Last-Attempt'), false);
  });

  it('cuts long values and omits absent ones', () => {
    const h = fallbackHeaders(undefined, { ...facts, error: 'x'.repeat(5_000), httpStatus: undefined, responseBody: undefined });
    assert.equal(h.get('Ferry-Error')?.[0]?.length, 1024);
    assert.equal(h.has('Ferry-Http-Status'), false);
    assert.equal(h.has('Ferry-Response-Body'), false);
  });

  it('dedups by source stream and sequence', () => {
    assert.equal(fallbackMsgId('CRM_EVENTS', 42), 'CRM_EVENTS:42');
  });
});
