/**
 * Durations as users write them: Go-style (`500ms`, `30s`, `5m`, `1h30m`, `1.5h`) plus whole
 * days in front (`14d`, `1d12h`), which Go lacks but retention periods need.
 *
 * One grammar serves three readers: the zod schema and the CRD `pattern` (the same RegExp),
 * {@link parseDuration} for the runtime, and {@link celDurationMillis} for CEL rules, whose
 * `duration()` only understands Go's units.
 */
import { z } from 'zod';
import { DurationInvalidError } from './errors.ts';
import { annotate, matching, type Rule } from './crd-meta.ts';

/**
 * The duration grammar, valid in both JavaScript and Go's RE2 (no look-around). Digit counts are
 * capped so that no duration overflows Go's int64 nanoseconds when CEL parses it, and fractions
 * are not allowed on `ms`, so every duration is a whole number of milliseconds.
 */
export const DURATION_PATTERN = /^(?:[0-9]{1,4}d)?(?:[0-9]{1,6}(?:\.[0-9]{1,3})?(?:h|m|s)|[0-9]{1,6}ms)*$/;

/** Message for any text that is not a duration. */
export const DURATION_MESSAGE = 'must be a duration such as 500ms, 30s or 5m';

const DURATION_MAX_LENGTH = 32;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const COMPONENT = /([0-9]+(?:\.[0-9]+)?)(ms|d|h|m|s)/g;

/**
 * Parses a duration into milliseconds (always a whole number).
 * @throws DurationInvalidError when `text` does not match {@link DURATION_PATTERN}.
 */
export function parseDuration(text: string): number {
  // The pattern matches the empty string (every part is optional); the 2-character minimum the
  // schema enforces rules it out there.
  if (text.length < 2 || text.length > DURATION_MAX_LENGTH || !DURATION_PATTERN.test(text)) {
    throw new DurationInvalidError(text);
  }
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(COMPONENT)) {
    ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  // Fractions such as 1.001s are not exact in binary floating point; the grammar guarantees a
  // whole number of milliseconds, so rounding only removes that error.
  return Math.round(ms);
}

/** Like {@link parseDuration}, but `undefined` instead of throwing. */
export function tryParseDuration(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

/**
 * A CEL expression for the number of milliseconds in the duration string at `expr` (an int).
 * CEL's `duration()` takes Go syntax only, so leading days are split off and counted apart.
 * `string(int)` is avoided on purpose: the API server prices its result as unbounded and would
 * refuse the CRD for exceeding the CEL cost budget.
 */
export function celDurationMillis(expr: string): string {
  const days = `(${expr}.contains('d') ? int(${expr}.substring(0, ${expr}.indexOf('d'))) * 86400000 : 0)`;
  // Without a day part indexOf is -1 and the substring is the whole text.
  const rest = `(${expr}.endsWith('d') ? 0 : duration(${expr}.substring(${expr}.indexOf('d') + 1)).getMilliseconds())`;
  return `(${days} + ${rest})`;
}

/** A duration string (may be zero, e.g. a lookback of `0s`). */
export const durationSchema = annotate(
  matching(z.string().min(2, DURATION_MESSAGE).max(DURATION_MAX_LENGTH, DURATION_MESSAGE), DURATION_PATTERN, DURATION_MESSAGE),
  { description: 'A duration such as 500ms, 30s, 5m, 1h30m or 14d.' },
);

// Every digit of a duration belongs to a number, so it is greater than zero exactly when some
// digit is not 0. A regex keeps the CEL cost negligible; a malformed value is left to the pattern.
const positive: Rule<string> = {
  rule: `!self.matches(${JSON.stringify(DURATION_PATTERN.source)}) || self.matches('[1-9]')`,
  message: 'must be greater than 0',
  holds: (value) => (tryParseDuration(value) ?? 1) > 0,
};

/** A duration greater than zero (timeouts, intervals, backoff steps). */
export const positiveDurationSchema = annotate(
  matching(
    z.string().min(2, DURATION_MESSAGE).max(DURATION_MAX_LENGTH, DURATION_MESSAGE).refine(positive.holds, positive.message),
    DURATION_PATTERN,
    DURATION_MESSAGE,
  ),
  {
    description: 'A duration greater than zero, such as 500ms, 30s, 5m, 1h30m or 14d.',
    'x-kubernetes-validations': [{ rule: positive.rule, message: positive.message }],
  },
);
