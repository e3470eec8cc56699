import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileJsonSchema, describeValidationErrors } from './compile-schema.ts';
import { compilePattern, findUnsupportedPattern, toRe2Syntax, UnsupportedPatternError } from './schema-regex.ts';

/** The reported input: a JS RegExp backtracks for about a minute on it. */
const EVIL = `${'a'.repeat(30)}!`;

describe('toRe2Syntax', () => {
  it('rewrites JS \\u escapes to RE2 \\x{…}', () => {
    assert.equal(toRe2Syntax('^\\u00e9$'), '^\\x{e9}$');
    assert.equal(toRe2Syntax('[\\u0041-\\u005A]'), '[\\x{41}-\\x{5a}]');
    assert.equal(toRe2Syntax('\\u{1F600}'), '\\x{1F600}');
    // A surrogate pair is one code point in RE2.
    assert.equal(toRe2Syntax('\\uD83D\\uDE00'), '\\x{1f600}');
  });

  it('leaves everything else as written', () => {
    for (const p of ['^[a-z]+$', '\\d{3}-\\d{4}', '\\\\u0041', 'a\\.b', '\\p{L}+', '(?<year>\\d{4})', '\\', '\\u12']) assert.equal(toRe2Syntax(p), p);
  });
});

describe('compilePattern', () => {
  it('matches like RegExp.test: unanchored unless the pattern anchors', () => {
    assert.equal(compilePattern('b').test('abc'), true);
    assert.equal(compilePattern('^b').test('abc'), false);
    assert.equal(compilePattern('^\\d{3}$').test('123'), true);
    assert.equal(compilePattern('^\\d{3}$').test('1234'), false);
    assert.equal(compilePattern('^\\p{L}+$').test('Ünïcödé'), true);
    assert.equal(compilePattern('^\\u00e9$').test('é'), true);
    assert.equal(compilePattern('^.$').test('😀'), true, 'a code point, not a UTF-16 unit');
  });

  it('answers the catastrophic pattern at once, however long the input', () => {
    const re = compilePattern('(a+)+$');
    assert.equal(re.test(EVIL), false);
    assert.equal(re.test(`${'a'.repeat(200_000)}!`), false);
    assert.equal(re.test('aaa'), true);
  });

  it('refuses what RE2 cannot run, saying what', () => {
    for (const [pattern, detail] of [
      ['^(?=a)b', /invalid or unsupported Perl syntax: `\(\?=`/],
      ['^(?!a)b', /invalid or unsupported Perl syntax: `\(\?!`/],
      ['(?<=a)b', /`\(\?<=`|lookbehind/],
      ['(a)\\1', /invalid escape sequence: `\\1`/],
      ['(?<x>a)\\k<x>', /invalid escape sequence: `\\k`/],
      ['a{1001}', /invalid repeat count/],
    ] as const) {
      assert.throws(
        () => compilePattern(pattern),
        (err: unknown) => err instanceof UnsupportedPatternError && err.pattern === pattern && err.code === 'FERRY_UNSUPPORTED_PATTERN' && detail.test(err.message),
        pattern,
      );
    }
  });
});

describe('findUnsupportedPattern', () => {
  it('finds a bad pattern in any subschema, with its pointer', () => {
    const bad = '(?=x)';
    const cases: [unknown, string][] = [
      [{ pattern: bad }, '/pattern'],
      [{ properties: { a: { properties: { 'b/c': { pattern: bad } } } } }, '/properties/a/properties/b~1c/pattern'],
      [{ patternProperties: { [bad]: {} } }, '/patternProperties/(?=x)'],
      [{ patternProperties: { '^ok$': { pattern: bad } } }, '/patternProperties/^ok$/pattern'],
      [{ items: { pattern: bad } }, '/items/pattern'],
      [{ prefixItems: [{}, { pattern: bad }] }, '/prefixItems/1/pattern'],
      [{ anyOf: [{ type: 'string' }, { allOf: [{ not: { pattern: bad } }] }] }, '/anyOf/1/allOf/0/not/pattern'],
      [{ $defs: { code: { pattern: bad } } }, '/$defs/code/pattern'],
      [{ if: {}, then: {}, else: { additionalProperties: { pattern: bad } } }, '/else/additionalProperties/pattern'],
      [{ propertyNames: { pattern: bad } }, '/propertyNames/pattern'],
      [{ dependentSchemas: { a: { pattern: bad } } }, '/dependentSchemas/a/pattern'],
    ];
    for (const [schema, pointer] of cases) assert.equal(findUnsupportedPattern(schema)?.pointer, pointer, JSON.stringify(schema));
  });

  it('does not look into data: const, enum, default, examples', () => {
    const data = { pattern: '(?=x)' };
    assert.equal(findUnsupportedPattern({ const: data, enum: [data], default: data, examples: [data], properties: { pattern: { type: 'string' } } }), undefined);
  });
});

describe('compileJsonSchema with RE2 patterns', () => {
  it('validates pattern and patternProperties, keeping each pattern apart', () => {
    const r = compileJsonSchema(
      {
        type: 'object',
        properties: { zip: { type: 'string', pattern: '^\\d{5}$' }, code: { type: 'string', pattern: '^[A-Z]{2}$' } },
        patternProperties: { '^x-': { type: 'string' } },
      },
      'spec.schema.inline',
    );
    assert.ok(r.ok);
    const validate = r.value;
    assert.equal(validate({ zip: '12345', code: 'DE', 'x-a': 'b' }), true);
    assert.equal(validate({ zip: 'DE', code: '12345' }), false);
    assert.equal(describeValidationErrors(validate.errors), '/zip: must match pattern "^\\d{5}$"; /code: must match pattern "^[A-Z]{2}$"');
    assert.equal(validate({ 'x-a': 1 }), false);
  });

  it('answers the catastrophic pattern at once', () => {
    const r = compileJsonSchema({ properties: { s: { type: 'string', pattern: '(a+)+$' } } }, 'spec.schema.inline');
    assert.ok(r.ok);
    assert.equal(r.value({ s: EVIL }), false);
    assert.equal(describeValidationErrors(r.value.errors), '/s: must match pattern "(a+)+$"');
  });

  it('reports a pattern RE2 refuses at its field', () => {
    const r = compileJsonSchema({ properties: { s: { pattern: '(?=a)' } } }, 'spec.schema.inline');
    assert.deepEqual(
      r.ok ? undefined : { field: r.field, unsupported: r.message.startsWith('"(?=a)" is not supported: patterns use RE2 syntax') },
      { field: 'spec.schema.inline.properties.s.pattern', unsupported: true },
    );
  });
});
