import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RedriveRequestInvalidError } from './errors.ts';
import { parseRedriveRequest, redriveAnnotations, redriveSelects, type RedriveFilter } from './redrive.ts';

describe('parseRedriveRequest', () => {
  it('is undefined without a ferry.dev/redrive value', () => {
    assert.equal(parseRedriveRequest(undefined), undefined);
    assert.equal(parseRedriveRequest({ 'ferry.dev/redrive': '  ' }), undefined);
    assert.equal(parseRedriveRequest({ 'ferry.dev/redrive-reasons': 'invalid' }), undefined);
  });

  it('reads every filter', () => {
    const req = parseRedriveRequest({
      'ferry.dev/redrive': '2026-12-02T10:00',
      'ferry.dev/redrive-reasons': 'exhausted, rejected,exhausted',
      'ferry.dev/redrive-sequences': '10-20',
      'ferry.dev/redrive-older-than': '1h',
      'ferry.dev/redrive-newer-than': '1d',
    });
    assert.deepEqual(req, {
      id: '2026-12-02T10:00',
      filter: { reasons: ['exhausted', 'rejected'], fromSequence: 10, toSequence: 20, olderThanMs: 3_600_000, newerThanMs: 86_400_000 },
    });
  });

  it('takes open and single sequence ranges', () => {
    assert.deepEqual(parseRedriveRequest({ 'ferry.dev/redrive': 'a', 'ferry.dev/redrive-sequences': '7-' })?.filter, { fromSequence: 7 });
    assert.deepEqual(parseRedriveRequest({ 'ferry.dev/redrive': 'a', 'ferry.dev/redrive-sequences': '-7' })?.filter, { toSequence: 7 });
    assert.deepEqual(parseRedriveRequest({ 'ferry.dev/redrive': 'a', 'ferry.dev/redrive-sequences': '7' })?.filter, { fromSequence: 7, toSequence: 7 });
  });

  for (const [annotation, value] of [
    ['ferry.dev/redrive-sequences', '9-3'],
    ['ferry.dev/redrive-sequences', '-'],
    ['ferry.dev/redrive-sequences', '0-4'],
    ['ferry.dev/redrive-sequences', 'a-b'],
    ['ferry.dev/redrive-reasons', 'exhausted,lost'],
    ['ferry.dev/redrive-reasons', ','],
    ['ferry.dev/redrive-older-than', 'yesterday'],
    ['ferry.dev/redrive-newer-than', '5 minutes'],
  ] as const) {
    it(`names ${annotation} when it is ${JSON.stringify(value)}`, () => {
      assert.throws(
        () => parseRedriveRequest({ 'ferry.dev/redrive': 'x', [annotation]: value }),
        (err: unknown) => err instanceof RedriveRequestInvalidError && err.annotation === annotation && err.message.includes(annotation) && err.code === 'FERRY_REDRIVE_REQUEST_INVALID',
      );
    });
  }

  it('refuses an id longer than 256 characters', () => {
    assert.throws(() => parseRedriveRequest({ 'ferry.dev/redrive': 'x'.repeat(257) }), RedriveRequestInvalidError);
  });
});

describe('redriveSelects', () => {
  const now = 10_000_000;
  const msg = { sequence: 5, reason: 'exhausted', parkedAtMs: now - 60_000 };
  const cases: [RedriveFilter, boolean][] = [
    [{}, true],
    [{ reasons: ['exhausted'] }, true],
    [{ reasons: ['invalid'] }, false],
    [{ fromSequence: 5, toSequence: 5 }, true],
    [{ fromSequence: 6 }, false],
    [{ toSequence: 4 }, false],
    [{ olderThanMs: 60_000 }, true],
    [{ olderThanMs: 60_001 }, false],
    [{ newerThanMs: 60_000 }, true],
    [{ newerThanMs: 59_999 }, false],
  ];
  for (const [filter, expected] of cases) {
    it(`${JSON.stringify(filter)} → ${String(expected)}`, () => {
      assert.equal(redriveSelects(filter, msg, now), expected);
    });
  }

  it('selects a message without a reason only when no reason is asked for', () => {
    assert.equal(redriveSelects({}, { ...msg, reason: undefined }, now), true);
    assert.equal(redriveSelects({ reasons: ['exhausted'] }, { ...msg, reason: undefined }, now), false);
  });
});

describe('redriveAnnotations', () => {
  it('round-trips through parseRedriveRequest and clears filters not given', () => {
    const a = redriveAnnotations('r1', { reasons: ['rejected'], fromSequence: 3, olderThan: '10m' });
    assert.equal(a['ferry.dev/redrive-newer-than'], null);
    const present = Object.fromEntries(Object.entries(a).filter((e): e is [string, string] => e[1] !== null));
    assert.deepEqual(parseRedriveRequest(present), { id: 'r1', filter: { reasons: ['rejected'], fromSequence: 3, olderThanMs: 600_000 } });
  });
});
