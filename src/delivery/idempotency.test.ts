import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TemplatePointerMissingError, TemplateValueError } from './errors.ts';
import { idempotencyKey, type KeyedEvent } from './idempotency.ts';
import { compileTemplate } from './template.ts';

const base: KeyedEvent = { stream: 'CRM_EVENTS', sequence: 1042, headers: {}, payload: { id: 'deal_9', amount: 5 } };

describe('idempotencyKey', () => {
  it('prefers the spec template', () => {
    const event = { ...base, headers: { 'Nats-Msg-Id': 'm-1' } };
    assert.deepEqual(idempotencyKey(event, compileTemplate('{{/id}}-invoice')), { key: 'deal_9-invoice', source: 'template' });
  });

  it('then the redrive header, then Nats-Msg-Id (any case)', () => {
    assert.deepEqual(idempotencyKey({ ...base, headers: { 'ferry-idempotency-key': 'k-orig', 'Nats-Msg-Id': 'm-1' } }), {
      key: 'k-orig',
      source: 'redrive',
    });
    assert.deepEqual(idempotencyKey({ ...base, headers: { 'nats-msg-id': 'm-1' } }), { key: 'm-1', source: 'nats-msg-id' });
  });

  it('then CloudEvents source + id, binary or structured, unambiguously joined', () => {
    const binary = { ...base, headers: { 'ce-source': 'https://crm.example.com/deals', 'ce-id': 'a:b' } };
    assert.deepEqual(idempotencyKey(binary), { key: 'https%3A%2F%2Fcrm.example.com%2Fdeals:a%3Ab', source: 'cloudevents' });
    const structured = { ...base, payload: { specversion: '1.0', source: '/crm', id: '77', data: {} } };
    assert.deepEqual(idempotencyKey(structured), { key: '%2Fcrm:77', source: 'cloudevents' });
    // Not a CloudEvent without specversion.
    assert.equal(idempotencyKey({ ...base, payload: { source: '/crm', id: '77' } }).source, 'sequence');
  });

  it('else stream:sequence', () => {
    assert.deepEqual(idempotencyKey(base), { key: 'CRM_EVENTS:1042', source: 'sequence' });
  });

  it('ignores empty headers', () => {
    assert.equal(idempotencyKey({ ...base, headers: { 'Nats-Msg-Id': '' } }).source, 'sequence');
  });

  it('is stable: the same event gives the same key on every call (retries, redeliveries)', () => {
    const t = compileTemplate('{{/id}}');
    const keys = new Set(Array.from({ length: 5 }, () => idempotencyKey(structuredClone(base), t).key));
    assert.equal(keys.size, 1);
  });

  it('throws instead of sending without a key when the template does not render', () => {
    assert.throws(() => idempotencyKey(base, compileTemplate('{{/missing}}')), TemplatePointerMissingError);
    assert.throws(() => idempotencyKey({ ...base, payload: { id: '' } }, compileTemplate('{{/id}}')), TemplateValueError);
  });
});
