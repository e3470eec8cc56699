/**
 * The `Retry-After` response header (RFC 9110 §10.2.3) and the retry delay it leads to. Pure:
 * `now` is passed in, so an HTTP-date is read relative to the caller's clock.
 */
import { backoffDelay, type BackoffPolicy } from './backoff.ts';

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const wkday = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const month = `(?<mon>${months.join('|')})`;
const time = '(?<hh>\\d{2}):(?<mm>\\d{2}):(?<ss>\\d{2})';
// The three HTTP-date forms a recipient must accept (RFC 9110 §5.6.7). Matched by hand rather
// than with Date.parse, which happily reads "5" or "soon 2" as dates.
const dateForms = [
  new RegExp(`^${wkday}, (?<day>\\d{2}) ${month} (?<year>\\d{4}) ${time} GMT$`),
  new RegExp(
    `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (?<day>\\d{2})-${month}-(?<yy>\\d{2}) ${time} GMT$`,
  ),
  new RegExp(`^${wkday} ${month} (?<day> \\d|\\d{2}) ${time} (?<year>\\d{4})$`),
];

/** Options for {@link parseRetryAfter}. */
export interface RetryAfterOptions {
  /** The current time (ms since the epoch) against which an HTTP-date is measured. */
  readonly now: number;
  /** `spec.delivery.retryAfterMax`: a target cannot make Ferry wait longer than this. */
  readonly maxMs: number;
}

/**
 * Reads a `Retry-After` value as a wait in ms, capped at `maxMs`. Accepts delta-seconds (`120`)
 * and all three HTTP-date forms; a date in the past gives 0. Returns `undefined` for a missing
 * header or anything else (negative or fractional numbers, free text, impossible dates), so a
 * garbage header falls back to plain backoff. With repeated headers the first one counts.
 */
export function parseRetryAfter(
  value: string | readonly string[] | undefined,
  options: RetryAfterOptions,
): number | undefined {
  const raw = typeof value === 'string' ? value : value?.[0];
  if (raw === undefined) return undefined;
  const text = raw.trim();
  let ms: number | undefined;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = parseHttpDate(text);
    if (at !== undefined) ms = Math.max(0, at - options.now);
  }
  return ms === undefined ? undefined : Math.min(ms, options.maxMs);
}

/** An HTTP-date in any of its three forms as ms since the epoch, or `undefined`. */
export function parseHttpDate(text: string): number | undefined {
  const g = dateForms.map((form) => form.exec(text)?.groups).find((groups) => groups !== undefined);
  if (!g) return undefined;
  // RFC 850's two-digit year: "19xx if ≥ 70" is close enough to RFC 9110's 50-year rule for the
  // rare target that still sends it.
  const year = g.yy === undefined ? Number(g.year) : Number(g.yy) + (Number(g.yy) >= 70 ? 1900 : 2000);
  const mon = months.indexOf(g.mon ?? '');
  const day = Number(g.day);
  const [hh, mm, ss] = [Number(g.hh), Number(g.mm), Number(g.ss)];
  if (hh > 23 || mm > 59 || ss > 60) return undefined;
  const at = Date.UTC(year, mon, day, hh, mm, ss);
  // Date.UTC rolls "31 Feb" into March; a date that does not round-trip is not a date.
  const check = new Date(at);
  return check.getUTCDate() === day && check.getUTCMonth() === mon ? at : undefined;
}

/** Inputs of {@link retryDelay}. */
export interface RetryDelayInput {
  /** 1-based retry number (JetStream's `deliveryCount` of the failed attempt). */
  readonly attempt: number;
  readonly backoff: BackoffPolicy;
  /** The target's `Retry-After` in ms, already parsed; `undefined` when absent or garbage. */
  readonly retryAfterMs: number | undefined;
  /** `spec.delivery.retryAfterMax`. */
  readonly retryAfterMaxMs: number;
  readonly random?: () => number;
}

/**
 * The delay to pass to `nak()` after a retryable failure: `max(backoff(attempt),
 * min(retryAfter, retryAfterMax))`. A target's Retry-After can lengthen the wait (never beyond the
 * cap) but never shorten it below our own backoff, so a target answering `Retry-After: 0` cannot
 * make Ferry hammer it.
 */
export function retryDelay(input: RetryDelayInput): number {
  const backoff = backoffDelay(input.attempt, input.backoff, input.random);
  const hinted = input.retryAfterMs === undefined ? 0 : Math.min(input.retryAfterMs, input.retryAfterMaxMs);
  return Math.max(backoff, hinted);
}
