import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DURATION_MESSAGE, celDurationMillis, durationSchema, parseDuration, positiveDurationSchema, tryParseDuration } from './duration.ts';
import { DurationInvalidError } from './errors.ts';

describe('parseDuration', () => {
  const valid: [string, number][] = [
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['1.001s', 1_001],
    ['0.5m', 30_000],
    ['14d', 1_209_600_000],
    ['1d12h', 129_600_000],
    ['2m30s500ms', 150_500],
    ['0s', 0],
  ];
  for (const [text, ms] of valid) {
    it(`reads ${text} as ${ms} ms`, () => {
      assert.equal(parseDuration(text), ms);
      assert.ok(Number.isInteger(parseDuration(text)));
    });
  }

  const invalid = ['', '5', 's', '5x', '1 s', '-1s', '1.5ms', '1.5d', '1h1d', '5sec', '1e3ms', ' 5s', '1234567h', '12345d', '1s'.repeat(17)];
  for (const text of invalid) {
    it(`rejects ${JSON.stringify(text)} with a typed error`, () => {
      assert.throws(() => parseDuration(text), (err: unknown) => err instanceof DurationInvalidError && err.text === text);
      assert.throws(() => parseDuration(text), { name: 'DurationInvalidError', code: 'FERRY_DURATION_INVALID', retryable: false });
      assert.equal(tryParseDuration(text), undefined);
    });
  }
});

describe('duration schemas', () => {
  it('accept what parseDuration accepts and explain what they reject', () => {
    assert.equal(durationSchema.parse('0s'), '0s');
    assert.equal(positiveDurationSchema.parse('14d'), '14d');
    const bad = durationSchema.safeParse('ten seconds');
    assert.ok(bad.error);
    assert.equal(bad.error.issues[0]?.message, DURATION_MESSAGE);
  });

  it('positive durations reject zero, with one message per problem', () => {
    const zero = positiveDurationSchema.safeParse('0m0s');
    assert.deepEqual(zero.error?.issues.map((i) => i.message), ['must be greater than 0']);
    const malformed = positiveDurationSchema.safeParse('soon');
    assert.deepEqual(malformed.error?.issues.map((i) => i.message), [DURATION_MESSAGE]);
  });
});

describe('celDurationMillis', () => {
  it('counts days apart and avoids string(int), which CEL prices as unbounded', () => {
    const expr = celDurationMillis('self.x');
    assert.match(expr, /int\(self\.x\.substring\(0, self\.x\.indexOf\('d'\)\)\) \* 86400000/);
    assert.match(expr, /duration\(self\.x\.substring\(self\.x\.indexOf\('d'\) \+ 1\)\)\.getMilliseconds\(\)/);
    assert.doesNotMatch(expr, /\bstring\(/);
  });
});
