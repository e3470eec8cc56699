import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson, contentHash, cursorMs, formatCursor, keyOf, keyToken, pointer, projectLike, tokenKey, valueAt } from './records.ts';

describe('pointer / valueAt', () => {
  it('reads nested fields, array items and escaped tokens', () => {
    const doc = { a: { 'b/c': [10, { 'd~e': 'x' }] } };
    assert.equal(valueAt(doc, pointer('/a/b~1c/0')), 10);
    assert.equal(valueAt(doc, pointer('/a/b~1c/1/d~0e')), 'x');
    assert.equal(valueAt(doc, pointer('/a/missing')), undefined);
    assert.deepEqual(valueAt(doc, pointer('')), doc);
  });
});

describe('keyOf', () => {
  const at = pointer('/id');
  it('takes strings and finite numbers', () => {
    assert.equal(keyOf({ id: 'acc-1' }, at), 'acc-1');
    assert.equal(keyOf({ id: 42 }, at), '42');
    assert.equal(keyOf({ id: 0 }, at), '0');
  });

  it('refuses an empty string, non-finite numbers, other types and a missing key', () => {
    assert.equal(keyOf({ id: '' }, at), undefined);
    assert.equal(keyOf({ id: Number.NaN }, at), undefined);
    assert.equal(keyOf({ id: Number.POSITIVE_INFINITY }, at), undefined);
    assert.equal(keyOf({ id: true }, at), undefined);
    assert.equal(keyOf({ id: null }, at), undefined);
    assert.equal(keyOf({ id: { nested: 1 } }, at), undefined);
    assert.equal(keyOf({ other: 'x' }, at), undefined);
    assert.equal(keyOf('not an object', at), undefined);
  });

  it('reads a nested key', () => {
    assert.equal(keyOf({ meta: { key: 'k' } }, pointer('/meta/key')), 'k');
  });
});

describe('cursorMs', () => {
  const at = pointer('/updated');
  it('reads RFC 3339 with Z and with an offset', () => {
    assert.equal(cursorMs({ updated: '2024-01-02T03:04:05Z' }, at, 'rfc3339'), Date.UTC(2024, 0, 2, 3, 4, 5));
    assert.equal(cursorMs({ updated: '2024-01-02T05:04:05.250+02:00' }, at, 'rfc3339'), Date.UTC(2024, 0, 2, 3, 4, 5, 250));
  });

  it('refuses unreadable RFC 3339 values', () => {
    assert.equal(cursorMs({ updated: 'yesterday' }, at, 'rfc3339'), undefined);
    assert.equal(cursorMs({ updated: 1_700_000_000 }, at, 'rfc3339'), undefined);
    assert.equal(cursorMs({}, at, 'rfc3339'), undefined);
  });

  it('reads unix seconds as numbers and numeric strings, fractions included', () => {
    assert.equal(cursorMs({ updated: 1_700_000_000 }, at, 'unixSeconds'), 1_700_000_000_000);
    assert.equal(cursorMs({ updated: '1700000000' }, at, 'unixSeconds'), 1_700_000_000_000);
    assert.equal(cursorMs({ updated: '1700000000.5' }, at, 'unixSeconds'), 1_700_000_000_500);
  });

  it('reads unix milliseconds', () => {
    assert.equal(cursorMs({ updated: 1_700_000_000_123 }, at, 'unixMillis'), 1_700_000_000_123);
    assert.equal(cursorMs({ updated: '1700000000123' }, at, 'unixMillis'), 1_700_000_000_123);
  });

  it('refuses non-numeric unix values', () => {
    for (const format of ['unixSeconds', 'unixMillis'] as const) {
      assert.equal(cursorMs({ updated: 'abc' }, at, format), undefined);
      assert.equal(cursorMs({ updated: '12e3' }, at, format), undefined);
      assert.equal(cursorMs({ updated: '' }, at, format), undefined);
      assert.equal(cursorMs({ updated: Number.NaN }, at, format), undefined);
      assert.equal(cursorMs({ updated: null }, at, format), undefined);
      assert.equal(cursorMs({ updated: true }, at, format), undefined);
    }
  });
});

describe('formatCursor', () => {
  const ms = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  it('writes each format', () => {
    assert.equal(formatCursor(ms, 'rfc3339'), '2024-01-02T03:04:05.678Z');
    assert.equal(formatCursor(ms, 'unixSeconds'), String(Math.floor(ms / 1000)));
    assert.equal(formatCursor(ms, 'unixMillis'), String(ms));
  });

  it('rounds down, so a lower bound never skips past a record', () => {
    assert.equal(formatCursor(1_999, 'unixSeconds'), '1');
    assert.equal(formatCursor(1_999.9, 'unixMillis'), '1999');
  });

  it('round-trips through cursorMs', () => {
    const at = pointer('/c');
    for (const format of ['rfc3339', 'unixMillis'] as const) {
      assert.equal(cursorMs({ c: formatCursor(ms, format) }, at, format), ms);
    }
    assert.equal(cursorMs({ c: formatCursor(ms, 'unixSeconds') }, at, 'unixSeconds'), ms - 678);
  });
});

describe('canonicalJson / contentHash', () => {
  it('is the same text for any key order, at every level', () => {
    const a = { b: 1, a: { y: [1, { q: 1, p: 2 }], x: null } };
    const b = { a: { x: null, y: [1, { p: 2, q: 1 }] }, b: 1 };
    assert.equal(canonicalJson(a), '{"a":{"x":null,"y":[1,{"p":2,"q":1}]},"b":1}');
    assert.equal(canonicalJson(a), canonicalJson(b));
    assert.equal(contentHash(a), contentHash(b));
  });

  it('leaves out undefined object fields like JSON does, and writes undefined array items as null', () => {
    assert.equal(canonicalJson({ a: 1, b: undefined }), '{"a":1}');
    assert.equal(canonicalJson([1, undefined]), '[1,null]');
    assert.equal(contentHash({ a: 1, b: undefined }), contentHash({ a: 1 }));
  });

  it('escapes keys and strings', () => {
    assert.equal(canonicalJson({ 'a"b': 'c\nd' }), '{"a\\"b":"c\\nd"}');
  });

  it('differs for different content', () => {
    const base = contentHash({ a: 1, b: [1, 2] });
    assert.notEqual(contentHash({ a: 2, b: [1, 2] }), base);
    assert.notEqual(contentHash({ a: 1, b: [2, 1] }), base, 'array order is content');
    assert.notEqual(contentHash({ a: '1', b: [1, 2] }), base, 'types are content');
    assert.notEqual(contentHash({ a: 1, b: [1, 2], c: null }), base, 'a null field is content');
  });

  it('is 22 base64url characters', () => {
    const h = contentHash({ any: 'thing' });
    assert.match(h, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(contentHash({ any: 'thing' }), h);
  });
});

describe('keyToken / tokenKey', () => {
  it('round-trips any key, including empty, slashes, dots, spaces and unicode', () => {
    for (const key of ['', '/', 'a/b/c', 'a.b c', '_', '-', '日本語', '🚀 emoji', '\u0000nul', 'x'.repeat(300)]) {
      const token = keyToken(key);
      assert.match(token, /^[A-Za-z0-9_-]+$/, `token of ${JSON.stringify(key)} is a valid subject token`);
      assert.equal(tokenKey(token), key);
    }
  });

  it('keeps distinct keys distinct; the empty key does not collide with "_"', () => {
    assert.equal(keyToken(''), '_');
    assert.notEqual(keyToken('_'), keyToken(''));
    assert.notEqual(keyToken('a'), keyToken('b'));
  });
});

describe('projectLike', () => {
  it('keeps only the fields of the shape, recursively', () => {
    const target = { id: 1, name: 'n', extra: true, address: { city: 'c', zip: 'z', geo: [1, 2] } };
    const shape = { name: 'x', address: { city: 'y' } };
    assert.deepEqual(projectLike(target, shape), { name: 'n', address: { city: 'c' } });
  });

  it('a field the target lacks projects as undefined, so it hashes like a missing field', () => {
    const projected = projectLike({ id: 1 }, { name: 'x' });
    assert.deepEqual(projected, { name: undefined });
    assert.equal(contentHash(projected), contentHash({}));
    assert.notEqual(contentHash(projected), contentHash({ name: 'x' }));
  });

  it('returns the target itself for array or scalar shapes and non-object targets', () => {
    const arr = [1, 2, 3];
    assert.equal(projectLike(arr, [0]), arr);
    assert.equal(projectLike('text', { a: 1 }), 'text');
    assert.equal(projectLike(null, { a: 1 }), null);
    assert.deepEqual(projectLike({ a: { b: 1 } }, { a: 5 }), { a: { b: 1 } });
  });

  it('ignores undefined shape fields', () => {
    assert.deepEqual(projectLike({ a: 1, b: 2 }, { a: 0, b: undefined }), { a: 1 });
  });
});
