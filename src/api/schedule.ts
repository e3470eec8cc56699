/**
 * Cron schedules and time zones, checked with the same library (croner) the scheduler runs.
 */
import { CronPattern } from 'croner';
import { z } from 'zod';
import { describe, matching } from './crd-meta.ts';

const CRON_MESSAGE = 'must be a cron expression with 5 fields (such as */15 * * * *), 6 with seconds first (such as 0 */15 * * * *), or @hourly, @daily, @weekly, @monthly, @yearly';
// A cheap shape check that the CRD can carry; croner below does the real parse.
const CRON_SHAPE = /^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+( +\S+){4,5})$/;

const TIME_ZONE_SHAPE = /^[A-Za-z0-9_+\-/]+$/;
const TIME_ZONE_MESSAGE = 'must be an IANA time zone such as Europe/Berlin';

function isCron(text: string): boolean {
  try {
    new CronPattern(text, undefined, { mode: '5-or-6-parts' });
    return true;
  } catch {
    return false;
  }
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * A five-field cron expression or a nickname, as a Kubernetes CronJob takes — or six fields with
 * seconds first, for syncs that must run more often than once a minute.
 */
export const cronSchema = describe(
  // The full parse only judges text of the right shape, so a bad value gets one message.
  matching(
    z.string().min(1, CRON_MESSAGE).max(128).refine((text) => !CRON_SHAPE.test(text) || isCron(text), CRON_MESSAGE),
    CRON_SHAPE,
    CRON_MESSAGE,
  ),
  'Cron expression with 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly.',
);

/** An IANA time zone name such as Europe/Berlin. */
export const timeZoneSchema = describe(
  matching(
    z.string().min(1, 'must not be empty').max(64).refine((name) => !TIME_ZONE_SHAPE.test(name) || isTimeZone(name), TIME_ZONE_MESSAGE),
    TIME_ZONE_SHAPE,
    TIME_ZONE_MESSAGE,
  ),
  'IANA time zone the schedule is read in (default UTC).',
);
