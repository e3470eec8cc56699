/**
 * When an escalation (a Warning Event that asks a person to act) is worth writing: the first
 * time a state is entered, then at most once per interval while it lasts or keeps coming back,
 * so a circuit that flaps or a fallback stream that keeps growing does not flood the Events.
 *
 * Pure: the caller passes the time; unit-tested with a fake clock.
 */

/** Default gap between two Warning Events of one reason about one object. */
export const ESCALATION_INTERVAL_MS = 10 * 60_000;

/** At most one escalation per key (object uid and reason) per interval. */
export class EscalationLimiter {
  private readonly last = new Map<string, number>();
  private readonly intervalMs: number;
  private readonly maxKeys: number;

  constructor(intervalMs = ESCALATION_INTERVAL_MS, maxKeys = 4096) {
    this.intervalMs = intervalMs;
    this.maxKeys = maxKeys;
  }

  /** True (and remembered) when nothing was escalated for `key` within the interval before `now`. */
  allow(key: string, now: number): boolean {
    const at = this.last.get(key);
    if (at !== undefined && now - at < this.intervalMs) return false;
    // Re-inserted as the newest: the oldest key is the first to go past the bound.
    this.last.delete(key);
    this.last.set(key, now);
    while (this.last.size > this.maxKeys) {
      const oldest = this.last.keys().next();
      if (oldest.done) break;
      this.last.delete(oldest.value);
    }
    return true;
  }
}

/**
 * Fallback growth worth a Warning: the first parked event, then each doubling of what was last
 * warned about. `warned` is that level (undefined: nothing warned yet, or the stream was emptied);
 * a stream that shrank (redriven, purged, expired) lowers it, so growth from there is seen.
 * Returns whether to warn and the level to remember.
 */
export function fallbackWarning(warned: number | undefined, pending: number): { readonly warn: boolean; readonly warned: number | undefined } {
  if (pending <= 0) return { warn: false, warned: undefined };
  if (warned === undefined || pending >= warned * 2) return { warn: true, warned: pending };
  return { warn: false, warned: Math.min(warned, pending) };
}
