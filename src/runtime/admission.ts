/**
 * Whether an attempt may go to the target now: the circuit breaker admits it (Closed, or the one
 * HalfOpen probe), no throttle hold is in force (a 429's Retry-After, here or on another replica),
 * and the rate limiter has a token. One unit in front of every attempt of one Integration.
 *
 * Expected flow: `tryNow()` first — true in the common case, with no promise hop; otherwise
 * `await wait(signal)`. A caller admitted through the breaker must `record()` the attempt's
 * verdict on the breaker. `wake()` makes every waiter look again at once (the breaker was reset
 * because the credentials changed).
 * Guarantees: never admits while the breaker refuses or before `heldUntil`; waiters re-check at
 * least every second, so a state adopted from another replica takes effect promptly.
 * Errors: `wait` rejects with the signal's reason when `signal` aborts (shutdown).
 */
import type { CircuitBreaker, TokenBucket } from '../delivery/index.ts';
import type { Clock } from '../observability/index.ts';

/** Longest a waiter sleeps before looking again. */
const RECHECK_MS = 1_000;

export class Admission {
  breaker: CircuitBreaker;
  bucket: TokenBucket | undefined;
  private readonly clock: Clock;
  private limitedUntil = 0;
  private waking = new AbortController();

  constructor(clock: Clock, breaker: CircuitBreaker, bucket: TokenBucket | undefined) {
    this.clock = clock;
    this.breaker = breaker;
    this.bucket = bucket;
  }

  /** Holds every attempt until `untilMs` (a throttle); an earlier time than the current hold is ignored. */
  holdUntil(untilMs: number): void {
    this.limitedUntil = Math.max(this.limitedUntil, untilMs);
  }

  /** Until when attempts are held (0 when never). */
  get heldUntil(): number {
    return this.limitedUntil;
  }

  /** Admits at once when nothing has to wait; false means call `wait`. */
  tryNow(): boolean {
    // Only a closed circuit admits without reserving a probe, so anything else takes the slow path.
    if (!this.breaker.closed || this.clock.now() < this.limitedUntil) return false;
    return !this.bucket || this.bucket.tryTake();
  }

  /** Resolves once an attempt is admitted (see the file header). */
  async wait(signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const now = this.clock.now();
      let sleepMs: number;
      if (now < this.limitedUntil) {
        sleepMs = this.limitedUntil - now;
      } else if (this.bucket && !this.bucket.tryTake()) {
        sleepMs = Math.max(1, this.bucket.waitTime());
      } else if (!this.breaker.tryAcquire()) {
        const until = this.breaker.snapshot().openUntil;
        sleepMs = Math.max(10, until === undefined ? 250 : until - now);
      } else {
        return;
      }
      await this.sleep(Math.min(sleepMs, RECHECK_MS), signal);
    }
  }

  /** Every waiter looks again now. */
  wake(): void {
    const w = this.waking;
    this.waking = new AbortController();
    w.abort();
  }

  private async sleep(ms: number, signal: AbortSignal): Promise<void> {
    try {
      await this.clock.sleep(ms, AbortSignal.any([signal, this.waking.signal]));
    } catch {
      // Woken, or stopping: the loop checks the signal.
    }
  }
}
