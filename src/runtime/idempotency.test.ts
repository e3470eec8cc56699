import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileTemplate, TemplatePointerMissingError, TemplateValueError } from '../api/index.ts';
import { idempotencyKey as keyOf, MAX_KEY_LENGTH, type KeyedEvent } from './idempotency.ts';

const SCOPE = 'revops/deal-to-invoice';
const idempotencyKey = (event: KeyedEvent, template?: ReturnType<typeof compileTemplate>): ReturnType<typeof keyOf> => keyOf(event, template, SCOPE);

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
    assert.deepEqual(idempotencyKey({ ...base, headers: { 'nats-msg-id': 'm-1' } }), { key: 'revops/deal-to-invoice/m-1', source: 'nats-msg-id' });
  });

  it('then CloudEvents source + id, binary or structured, unambiguously joined', () => {
    const binary = { ...base, headers: { 'ce-source': 'https://crm.example.com/deals', 'ce-id': 'a:b' } };
    assert.deepEqual(idempotencyKey(binary), { key: 'revops/deal-to-invoice/https%3A%2F%2Fcrm.example.com%2Fdeals:a%3Ab', source: 'cloudevents' });
    const structured = { ...base, payload: { specversion: '1.0', source: '/crm', id: '77', data: {} } };
    assert.deepEqual(idempotencyKey(structured), { key: 'revops/deal-to-invoice/%2Fcrm:77', source: 'cloudevents' });
    // Not a CloudEvent without specversion.
    assert.equal(idempotencyKey({ ...base, payload: { source: '/crm', id: '77' } }).source, 'sequence');
  });

  it('else stream:sequence', () => {
    assert.deepEqual(idempotencyKey(base), { key: 'revops/deal-to-invoice/CRM_EVENTS:1042', source: 'sequence' });
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

  it('scopes default keys by the Integration: two Integrations on one stream never share a key', () => {
    const event = { ...base, headers: { 'Nats-Msg-Id': 'm-1' } };
    const a = keyOf(event, undefined, 'revops/deal-to-invoice').key;
    const b = keyOf(event, undefined, 'revops/deal-to-erp').key;
    assert.notEqual(a, b);
    assert.notEqual(keyOf(base, undefined, 'ns/a').key, keyOf(base, undefined, 'ns/b').key);
    // A template key is the user's choice and is sent as written.
    assert.equal(keyOf(event, compileTemplate('{{/id}}'), 'ns/a').key, keyOf(event, compileTemplate('{{/id}}'), 'ns/b').key);
    // The redrive header already carries the scoped key of the original attempts.
    assert.equal(keyOf({ ...base, headers: { 'Ferry-Idempotency-Key': a } }, undefined, 'revops/deal-to-invoice').key, a);
  });

  it('hashes a default key that would be longer than 255 characters, still per event and Integration', () => {
    const long = { ...base, headers: { 'Nats-Msg-Id': 'x'.repeat(300) } };
    const other = { ...base, headers: { 'Nats-Msg-Id': `${'x'.repeat(299)}y` } };
    const k = keyOf(long, undefined, 'ns/a').key;
    assert.ok(k.length <= MAX_KEY_LENGTH, `${k.length}`);
    assert.match(k, /^ns\/a\/sha256:[0-9a-f]{64}$/);
    assert.notEqual(k, keyOf(other, undefined, 'ns/a').key);
    assert.notEqual(k, keyOf(long, undefined, 'ns/b').key);
  });
});
