/**
 * A token bucket over an injected clock: the local enforcement of a replica's share of an
 * Integration's rate limit. No I/O; waiting is `clock.sleep`, so tests advance a ManualClock.
 *
 * Hand-written because the npm limiters either read the wall clock directly (untestable without
 * sleeps) or keep their state in Redis; this one is ~100 lines.
 */
import type { Clock } from '../observability/index.ts';
import { DeliveryConfigError } from './errors.ts';

// Refills add fractions (0.1 token per 10 ms); without a tolerance, float error makes the
// 10th tenth 0.9999999 and a token due now arrives a millisecond late.
const EPSILON = 1e-9;

/** Settings of a {@link TokenBucket}; validated by its constructor. */
export interface TokenBucketOptions {
  /** Tokens added per second (> 0). */
  readonly perSecond: number;
  /** Capacity: how many tokens can be taken at once after a quiet period (≥ 1). */
  readonly burst: number;
  readonly clock: Clock;
}

/**
 * Guarantees: over any interval of length T, at most `burst + perSecond × T` tokens are taken
 * (for a constant rate). The bucket starts full. Waiters are woken when the rate changes, so a
 * raised rate takes effect at once.
 */
export class TokenBucket {
  private readonly clock: Clock;
  private perSecond: number;
  private capacity: number;
  private tokens: number;
  private updatedAt: number;
  private readonly sleepers = new Set<AbortController>();

  /** @throws DeliveryConfigError for a non-positive rate or a burst below 1. */
  constructor(options: TokenBucketOptions) {
    validate(options.perSecond, options.burst);
    this.clock = options.clock;
    this.perSecond = options.perSecond;
    this.capacity = options.burst;
    this.tokens = options.burst;
    this.updatedAt = options.clock.now();
  }

  /** The current rate in tokens per second. */
  get rate(): number {
    return this.perSecond;
  }

  /** The current capacity. */
  get burst(): number {
    return this.capacity;
  }

  /** Tokens available now (fractional). */
  get available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes one token if one is available now; never waits. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1 - EPSILON) return false;
    this.tokens = Math.max(0, this.tokens - 1);
    return true;
  }

  /** Milliseconds until a token will be available (0 if one is available now). */
  waitTime(): number {
    this.refill();
    if (this.tokens >= 1 - EPSILON) return 0;
    return Math.ceil(((1 - this.tokens) / this.perSecond) * 1000 - EPSILON);
  }

  /**
   * Resolves once a token has been taken. Rejects with `signal.reason` if the signal aborts first
   * (no token is taken then).
   */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (this.tryTake()) return;
      const wake = new AbortController();
      this.sleepers.add(wake);
      try {
        await this.clock.sleep(this.waitTime(), signal ? AbortSignal.any([signal, wake.signal]) : wake.signal);
      } catch (error) {
        // Woken by setRate(): recompute the wait. Aborted by the caller: give up.
        if (!wake.signal.aborted || signal?.aborted) throw error;
      } finally {
        this.sleepers.delete(wake);
      }
    }
  }

  /**
   * Changes the rate (and optionally the burst) from now on. Tokens earned so far are kept, up to
   * the new burst. Called when the shared rate changes (a 429 anywhere, recovery, membership).
   * @throws DeliveryConfigError for a non-positive rate or a burst below 1.
   */
  setRate(perSecond: number, burst: number = this.capacity): void {
    validate(perSecond, burst);
    this.refill();
    this.perSecond = perSecond;
    this.capacity = burst;
    this.tokens = Math.min(this.tokens, burst);
    for (const sleeper of this.sleepers) sleeper.abort();
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) this.tokens = Math.min(this.capacity, this.tokens + (elapsed / 1000) * this.perSecond);
    this.updatedAt = Math.max(this.updatedAt, now);
  }
}

function validate(perSecond: number, burst: number): void {
  if (!(Number.isFinite(perSecond) && perSecond > 0)) {
    throw new DeliveryConfigError('rateLimit.perSecond', 'must be a finite number > 0');
  }
  if (!(Number.isFinite(burst) && burst >= 1)) throw new DeliveryConfigError('rateLimit.burst', 'must be ≥ 1');
}
