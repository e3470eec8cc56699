import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { annotate, describe as describeField, matching, withRules } from './crd-meta.ts';
import { toStructuralSchema } from './crd-schema.ts';
import { CrdSchemaError } from './errors.ts';

describe('toStructuralSchema', () => {
  it('keeps types, bounds, defaults and required fields, and drops additionalProperties: false', () => {
    const schema = z.strictObject({
      name: z.string().min(1).max(10),
      count: z.int().min(0).max(5).default(1),
      kind: z.enum(['a', 'b']).optional(),
      fixed: z.literal('x'),
      tags: z.array(z.string().max(3)).max(2).optional(),
    });
    assert.deepEqual(toStructuralSchema(schema), {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 10 },
        count: { type: 'integer', minimum: 0, maximum: 5, default: 1 },
        kind: { type: 'string', enum: ['a', 'b'] },
        fixed: { type: 'string', enum: ['x'] },
        tags: { type: 'array', maxItems: 2, items: { type: 'string', maxLength: 3 } },
      },
      required: ['name', 'fixed'],
    });
  });

  it('writes prefaulted objects as default: {}', () => {
    const schema = z.object({ inner: z.strictObject({ a: z.string().max(1).default('x') }).prefault({}) });
    assert.deepEqual(toStructuralSchema(schema).properties?.inner?.default, {});
  });

  it('turns an int | string union into x-kubernetes-int-or-string', () => {
    const node = toStructuralSchema(z.object({ v: z.union([z.int(), z.string().max(3)]) })).properties?.v;
    assert.deepEqual(node, { 'x-kubernetes-int-or-string': true });
  });

  it('marks annotated free-form objects as preserving unknown fields', () => {
    const free = annotate(z.record(z.string(), z.unknown()), { 'x-kubernetes-preserve-unknown-fields': true });
    assert.deepEqual(toStructuralSchema(z.object({ doc: free })).properties?.doc, { type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  });

  it('drops the regex zod writes next to date-time', () => {
    assert.deepEqual(toStructuralSchema(z.object({ t: z.iso.datetime({ offset: true }) })).properties?.t, { type: 'string', format: 'date-time' });
  });

  it('turns a pattern with a message into a CEL rule with that message', () => {
    const node = toStructuralSchema(z.object({ s: matching(z.string().max(9), /^a'b\\c$/, 'must be it') })).properties?.s;
    assert.deepEqual(node, {
      type: 'string',
      maxLength: 9,
      'x-kubernetes-validations': [{ rule: String.raw`self.matches("^a'b\\\\c$")`, message: 'must be it' }],
    });
  });

  it('emits cross-field rules and descriptions, and keeps them on annotated copies only', () => {
    const base = z.strictObject({ a: z.int().min(0).max(9), b: z.int().min(0).max(9) });
    const ruled = describeField(
      withRules(base, [{ rule: 'self.a <= self.b', message: 'a must not exceed b', fieldPath: '.a', holds: (v) => v.a <= v.b }]),
      'A pair.',
    );
    const node = toStructuralSchema(ruled);
    assert.equal(node.description, 'A pair.');
    assert.deepEqual(node['x-kubernetes-validations'], [{ rule: 'self.a <= self.b', message: 'a must not exceed b', fieldPath: '.a' }]);
    assert.equal(toStructuralSchema(base)['x-kubernetes-validations'], undefined);
    assert.deepEqual(ruled.safeParse({ a: 5, b: 1 }).error?.issues.map((i) => [i.path, i.message]), [[['a'], 'a must not exceed b']]);
  });

  it('describes one shared schema differently at each use', () => {
    const shared = z.string().max(5);
    const properties = toStructuralSchema(z.object({ x: describeField(shared, 'first'), y: describeField(shared, 'second'), z: shared })).properties;
    assert.ok(properties);
    assert.equal(properties.x?.description, 'first');
    assert.equal(properties.y?.description, 'second');
    assert.equal(properties.z?.description, undefined);
  });

  it('refuses shapes a structural schema cannot express', () => {
    const refuses = (schema: z.ZodType, path: string): void => {
      assert.throws(() => toStructuralSchema(schema), (err: unknown) => err instanceof CrdSchemaError && err.path === path);
      assert.throws(() => toStructuralSchema(schema), { name: 'CrdSchemaError', code: 'FERRY_CRD_SCHEMA' });
    };
    refuses(z.object({ u: z.union([z.object({ a: z.string() }), z.object({ b: z.string() })]) }), 'properties.u');
    refuses(z.object({ m: z.record(z.string(), z.unknown()) }), 'properties.m');
    refuses(z.object({ n: z.string().nullable() }), 'properties.n');
  });
});
