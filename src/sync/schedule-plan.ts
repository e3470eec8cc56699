/**
 * When a SyncSchedule runs. From the cron schedule, the clock and the last slot already handled,
 * decides whether a run is due now and when to look again. Pure: `now` and the last slot are
 * passed in (the slot lives in KV with the caller), so every replica computes the same plan and
 * tests need no clock.
 *
 * Guarantees:
 * - A slot runs at most once: a slot at or before `lastSlot` is never due again. Slots are
 *   instants (whole seconds), and the caller stores the one it ran or skipped.
 * - After downtime there is one run, of the latest missed slot, however many were missed. A sync
 *   is incremental (it reads everything since its cursor), so running the earlier slots would
 *   only repeat work; `missed` says how many were folded into the run, for status and metrics.
 * - A slot older than the starting deadline is not run late. It comes back as `expired` so the
 *   caller records it as skipped and it is not considered again.
 * - Bounded work: the latest slot is found by croner's backward search (`previousRuns`), not by
 *   stepping forward from the last run, and at most MAX_COUNTED_MISSED slots are counted. A
 *   per-second schedule missed for a week costs about as much as one missed for two minutes.
 *
 * Daylight saving time: slots come from croner with the options the controller uses for
 * `status.nextScheduleTime` (src/api compile-spec `nextRun`: only `timezone`), so the two agree.
 * croner's rules, shared with croner-rust and close to Vixie cron:
 * - A fixed-time pattern (second, minute and hour each one value, e.g. `30 2 * * *`) whose
 *   wall-clock time is skipped at spring-forward runs once when the clock has jumped (03:00 local
 *   in Europe), and at fall-back runs once, at the first of the two occurrences.
 * - Any other pattern is an interval pattern (e.g. every 15 minutes, `0-59/15 * * * *`): it
 *   skips the missing hour and runs on both passes of the repeated one, keeping its pace in
 *   elapsed time.
 * We keep croner's rule rather than deduplicating slots by wall-clock time: that would leave a
 * 75-minute hole in a quarter-hourly sync each autumn. Caveat: a list such as `30 2,14 * * *`
 * counts as an interval pattern, so its 02:30 runs twice on the fall-back night.
 *
 * Errors: an invalid pattern or time zone throws croner's `TypeError`. Callers validate the spec
 * first (src/api schedule.ts and compile-spec), so a throw here is a bug, not bad input.
 */
import { Cron } from 'croner';

/**
 * The default starting deadline: one hour. Kubernetes CronJob has no default deadline (past 100
 * missed schedules it only warns), so a controller that was down all night starts the 02:00
 * job at whatever hour it returns, possibly in business hours against a busy source API. We
 * want a bound: an hour covers restarts, upgrades, leader failover and short NATS outages, and
 * because a sync is incremental a skipped slot loses no data, as the next run catches up. A
 * schedule that must catch up after longer outages sets its own deadline.
 */
export const DEFAULT_STARTING_DEADLINE_MS = 60 * 60 * 1000;

/**
 * Missed slots are counted up to this many, then counting stops (so `missed` reads "at least
 * 100"). Each step is a time-zone conversion in croner (tens of µs); 100 keeps the worst case to
 * a few ms and matches the number at which a Kubernetes CronJob reports too many missed starts.
 */
export const MAX_COUNTED_MISSED = 100;

/** Inputs of {@link planSchedule}. */
export interface PlanInput {
  /** Cron pattern in croner syntax: 5 fields, or 6 with seconds first. */
  readonly schedule: string;
  /** IANA time zone the pattern is read in. */
  readonly timeZone: string;
  readonly now: Date;
  /** The latest slot already run or skipped (from state in KV); undefined = never. */
  readonly lastSlot: Date | undefined;
  /** Slots at or before this are never run (the object's creation time). */
  readonly notBefore: Date;
  /**
   * A missed slot older than this (ms before now) is not run late; undefined: the default
   * {@link DEFAULT_STARTING_DEADLINE_MS}.
   */
  readonly startingDeadlineMs: number | undefined;
}

/** The outcome of {@link planSchedule}. */
export type Plan =
  | {
      readonly kind: 'run';
      /** The slot to run now; the caller stores it as the new `lastSlot`. */
      readonly slot: Date;
      /** Earlier slots skipped in favour of this one, at most {@link MAX_COUNTED_MISSED}. */
      readonly missed: number;
      /** When to plan again; undefined when the pattern never fires again. */
      readonly next: Date | undefined;
    }
  | {
      readonly kind: 'wait';
      readonly next: Date | undefined;
      /**
       * The latest due slot, too old to run (past the starting deadline). The caller records it
       * as skipped (stores it as `lastSlot`) and reports it; `missed` counts the slots before it.
       */
      readonly expired?: { readonly slot: Date; readonly missed: number };
    };

/**
 * Plans one look at a schedule. Called on each wake-up of a SyncSchedule (at `next`, after a
 * restart, after a spec change); the caller runs, or records an expired slot, then sleeps until
 * `next`.
 *
 * The due slot is the latest slot `s` with `max(lastSlot, notBefore) < s <= now`. If there is one
 * and `now - s <= startingDeadline`, the plan is `run`; if it is older, `wait` with `expired`;
 * otherwise a plain `wait`. `next` is the first slot after both `now` and `lastSlot`: normally
 * the first slot after `now`, but when another replica's clock ran ahead and stored a later
 * `lastSlot`, waking for a slot that can no longer run would be pointless.
 *
 * @throws TypeError from croner when the pattern or time zone is invalid.
 */
export function planSchedule(input: PlanInput): Plan {
  const cron = new Cron(input.schedule, { timezone: input.timeZone, paused: true });
  const now = input.now.getTime();
  const floor = Math.max(input.lastSlot?.getTime() ?? -Infinity, input.notBefore.getTime());
  const next = cron.nextRun(new Date(Math.max(now, floor))) ?? undefined;
  // previousRuns looks strictly before its reference; 1 ms later lets a slot at `now` be due.
  const due = cron.previousRuns(1, new Date(now + 1)).at(0);
  if (due === undefined || due.getTime() <= floor) return { kind: 'wait', next };

  const missed = countSlots(cron, floor, due.getTime());
  const deadline = input.startingDeadlineMs ?? DEFAULT_STARTING_DEADLINE_MS;
  if (now - due.getTime() <= deadline) return { kind: 'run', slot: due, missed, next };
  return { kind: 'wait', next, expired: { slot: due, missed } };
}

/** The number of slots strictly between `after` and `before`, counting at most MAX_COUNTED_MISSED. */
function countSlots(cron: Cron, after: number, before: number): number {
  let count = 0;
  // nextRun is strictly after its argument, so this walk cannot stand still.
  for (let at = cron.nextRun(new Date(after)); at !== null && at.getTime() < before; at = cron.nextRun(at)) {
    if (count === MAX_COUNTED_MISSED) break;
    count++;
  }
  return count;
}
