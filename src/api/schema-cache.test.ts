import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonSchemaCache } from './schema-cache.ts';

const schema = (type: string): Record<string, unknown> => ({ type: 'object', properties: { id: { type } } });

describe('JsonSchemaCache', () => {
  it('hands the same validator to equal schemas at the same field, and it validates', () => {
    const cache = new JsonSchemaCache();
    const a = cache.compile(schema('string'), 'spec.schema.inline');
    const b = cache.compile(schema('string'), 'spec.schema.inline');
    assert.ok(a.ok && b.ok);
    assert.equal(a.value, b.value);
    assert.equal(a.value({ id: 'x' }), true);
    assert.equal(a.value({ id: 1 }), false);
  });

  it('keeps different schemas and different fields apart, failures included', () => {
    const cache = new JsonSchemaCache();
    const s = cache.compile(schema('string'), 'spec.schema.inline');
    const n = cache.compile(schema('number'), 'spec.schema.inline');
    assert.ok(s.ok && n.ok);
    assert.notEqual(s.value, n.value);
    const bad = cache.compile({ type: 'nope' }, 'spec.schema.inline');
    const badElsewhere = cache.compile({ type: 'nope' }, 'spec.target.responseSchema');
    assert.ok(!bad.ok && !badElsewhere.ok);
    assert.match(bad.field, /^spec\.schema\.inline/);
    assert.match(badElsewhere.field, /^spec\.target\.responseSchema/);
  });

  it('drops the least recently used entry past its capacity', () => {
    const cache = new JsonSchemaCache(2);
    const first = cache.compile(schema('string'), 'f');
    cache.compile(schema('number'), 'f');
    cache.compile(schema('string'), 'f');
    cache.compile(schema('boolean'), 'f');
    assert.equal(cache.size, 2);
    const again = cache.compile(schema('string'), 'f');
    assert.ok(first.ok && again.ok);
    assert.equal(again.value, first.value);
  });
});
