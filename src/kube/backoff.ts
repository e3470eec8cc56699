/**
 * Capped exponential backoff, used by the watcher between restarts and by the work queue's rate
 * limiter. Pure arithmetic plus a little state; time is never read here.
 */

export interface BackoffOptions {
  /** First delay. */
  readonly initialMs: number;
  /** Upper bound of any delay. */
  readonly maxMs: number;
  /** Growth per attempt; default 2. */
  readonly factor?: number;
  /**
   * Random spread as a fraction of the delay: 0 (default) is none, 1 adds up to +100%
   * (client-go's reflector uses 1.0 so restarting watchers do not stampede the API server).
   * The jittered delay is still capped at `maxMs`.
   */
  readonly jitter?: number;
  /** Source of randomness in [0, 1); tests pass a constant. */
  readonly random?: () => number;
}

/** Delay for attempt `attempt` (0-based): `initialMs × factor^attempt`, capped, then jittered. */
export function backoffDelay(options: BackoffOptions, attempt: number): number {
  const factor = options.factor ?? 2;
  // Cap the exponent's result before it overflows to Infinity for large attempts.
  const raw = Math.min(options.maxMs, options.initialMs * factor ** Math.min(attempt, 1000));
  const jitter = options.jitter ?? 0;
  const spread = jitter > 0 ? raw * jitter * (options.random ?? Math.random)() : 0;
  return Math.min(options.maxMs, raw + spread);
}

/**
 * A backoff sequence: each `next()` returns the next delay; `reset()` starts over. Used by one
 * owner only (not shared between watchers).
 */
export class Backoff {
  private attempt = 0;
  private readonly options: BackoffOptions;

  constructor(options: BackoffOptions) {
    this.options = options;
  }

  next(): number {
    const delay = backoffDelay(this.options, this.attempt);
    this.attempt++;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }

  /** How many delays have been handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }
}
