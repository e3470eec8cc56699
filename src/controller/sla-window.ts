/**
 * The share of late events over a sliding window, from the cumulative `slaMet`/`slaLate`
 * counters every replica adds to its Integration's shared stats key (the leader reads the sum).
 *
 * Expected flow: the leader samples the counters once per tick (`observe`) and asks for the
 * figures over the window (`figures`); `slaVerdict` turns them, with the age of the oldest event
 * still waiting in the source, into "missed" or not.
 * Guarantees: memory is bounded by the samples of one window (one per tick); counters that go
 * backwards (the shared key was removed) restart the measurement instead of giving negatives.
 * Caveats: a new leader starts from its first sample — events finished before it took over are
 * not in its window (it cannot know when they happened); the window fills within `window`.
 */

interface Sample {
  readonly at: number;
  readonly met: number;
  readonly late: number;
}

/** Events finished in the window (delivered or parked), and how many of them were late. */
export interface SlaFigures {
  readonly total: number;
  readonly late: number;
}

/** Cumulative counters sampled over time, for the figures of the last `windowMs`. */
export class SlaWindow {
  private samples: Sample[] = [];

  /** Records the cumulative counters as they are at `at` (times only go forward). */
  observe(at: number, met: number, late: number): void {
    const last = this.samples.at(-1);
    if (last && (met < last.met || late < last.late)) this.samples = [];
    this.samples.push({ at, met, late });
  }

  /**
   * Figures over `(now - windowMs, now]`: the latest sample minus the last one taken at or before
   * the window's start (or the first one, while the window is not yet covered). Older samples,
   * no longer needed as a baseline, are dropped.
   */
  figures(now: number, windowMs: number): SlaFigures {
    const start = now - windowMs;
    let base = 0;
    while (base + 1 < this.samples.length && (this.samples[base + 1]?.at ?? Infinity) <= start) base++;
    if (base > 0) this.samples.splice(0, base);
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last) return { total: 0, late: 0 };
    const late = last.late - first.late;
    return { total: last.met - first.met + late, late };
  }
}

export interface SlaPolicy {
  readonly deliverWithinMs: number;
  readonly maxLatePercent: number;
}

export interface SlaVerdict {
  readonly missed: boolean;
  /** Why, for a condition message (only when missed). */
  readonly why?: string;
}

/**
 * Missed while more than `maxLatePercent` of the events finished in the window were late, or
 * while an event still waiting in the source (`oldestPendingMs`: when it was stored) is older
 * than `deliverWithinMs` — so an outage is seen while it lasts, not only once it is over.
 */
export function slaVerdict(figures: SlaFigures, oldestPendingMs: number | undefined, policy: SlaPolicy, now: number): SlaVerdict {
  const waitingMs = oldestPendingMs === undefined ? 0 : now - oldestPendingMs;
  if (waitingMs > policy.deliverWithinMs) {
    return { missed: true, why: `the oldest event waiting in the source stream was published ${seconds(waitingMs)} ago (deliverWithin ${seconds(policy.deliverWithinMs)})` };
  }
  // Integer arithmetic: late/total > p/100 without a rounded share.
  if (figures.total > 0 && figures.late * 100 > policy.maxLatePercent * figures.total) {
    const share = Math.round((figures.late * 1000) / figures.total) / 10;
    return {
      missed: true,
      why: `${figures.late} of ${figures.total} events (${share}%) finished later than deliverWithin ${seconds(policy.deliverWithinMs)} or were parked (limit ${policy.maxLatePercent}%)`,
    };
  }
  return { missed: false };
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms) / 1000}s` : `${Math.round(ms / 1000)}s`;
}
