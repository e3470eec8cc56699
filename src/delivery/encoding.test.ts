import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeBody, encodeForm } from './encoding.ts';
import { BodyEncodingError } from './errors.ts';

describe('encodeForm', () => {
  it('encodes nested objects and arrays Stripe-style', () => {
    const form = encodeForm({
      amount: 2000,
      currency: 'eur',
      confirm: true,
      customer: { name: 'Jane Doe', address: { city: 'Berlin', line1: 'Straße 1' } },
      items: [{ price: 'p_1', quantity: 2 }, { price: 'p_2' }],
      expand: ['customer', 'invoice'],
      metadata: { 'order id': 'a&b=c' },
    });
    assert.equal(
      form,
      [
        'amount=2000',
        'currency=eur',
        'confirm=true',
        'customer[name]=Jane%20Doe',
        'customer[address][city]=Berlin',
        'customer[address][line1]=Stra%C3%9Fe%201',
        'items[0][price]=p_1',
        'items[0][quantity]=2',
        'items[1][price]=p_2',
        'expand[0]=customer',
        'expand[1]=invoice',
        'metadata[order%20id]=a%26b%3Dc',
      ].join('&'),
    );
  });

  it('writes null as an empty value and leaves out undefined and empty containers', () => {
    assert.equal(encodeForm({ a: null, b: undefined, c: {}, d: [], e: 'x' }), 'a=&e=x');
  });

  it('round-trips through URLSearchParams', () => {
    const params = new URLSearchParams(encodeForm({ q: 'a b+c', n: { k: 'é' } }));
    assert.equal(params.get('q'), 'a b+c');
    assert.equal(params.get('n[k]'), 'é');
  });

  it('refuses what a form cannot express, with the path', () => {
    for (const top of [[1, 2], 'text', 5, null]) assert.throws(() => encodeForm(top), BodyEncodingError);
    assert.throws(
      () => encodeForm({ a: { b: [1, Number.POSITIVE_INFINITY] } }),
      (e: unknown) => e instanceof BodyEncodingError && e.path === '/a/b/1',
    );
    assert.throws(() => encodeForm({ a: 10n }), BodyEncodingError);
  });
});

describe('encodeBody', () => {
  it('encodes JSON with its content type', () => {
    assert.deepEqual(encodeBody({ a: [1, 'x'] }, 'json'), { contentType: 'application/json', payload: '{"a":[1,"x"]}' });
  });

  it('encodes forms with their content type', () => {
    assert.deepEqual(encodeBody({ a: { b: 'c' } }, 'form'), { contentType: 'application/x-www-form-urlencoded', payload: 'a[b]=c' });
  });

  it('refuses values without a JSON form', () => {
    assert.throws(() => encodeBody(undefined, 'json'), BodyEncodingError);
    assert.throws(() => encodeBody({ n: 1n }, 'json'), BodyEncodingError);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assert.throws(() => encodeBody(cycle, 'json'), BodyEncodingError);
  });
});
