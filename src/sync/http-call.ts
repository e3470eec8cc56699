/**
 * One HTTP conversation of a sync run (a source page, a target write, a lookup page) with the
 * delivery layer's reliability units: the token bucket (lowered AIMD-style by 429s through
 * `ThrottleController`), Retry-After, exponential backoff, the circuit breaker, and a deadline.
 *
 * Guarantees:
 * - After a 429 (or a 503 with Retry-After) no request of this run starts before the hint has
 *   passed — not just the retried one: the API said "stop", not "stop this request".
 * - A wait that would end past the run's deadline (the next slot, or the rate budget) is not
 *   waited: `RunBudgetExhaustedError`, and the run ends `Partial` with its state committed.
 * - 401/403 and an open breaker are target-wide (`TargetUnavailableError`): no point going on.
 * - Any other answer is returned as it is; judging 4xx per record is the caller's business.
 */
import {
  backoffDelay,
  outcomeOfError,
  parseRetryAfter,
  retryDelay,
  ThrottleController,
  TokenBucket,
  type BackoffPolicy,
  type CircuitBreaker,
  type Deliverer,
  type DeliveryRequest,
  type DeliveryResponse,
} from '../delivery/index.ts';
import type { Clock } from '../observability/index.ts';
import { RunBudgetExhaustedError, RunCancelledError, TargetUnavailableError } from './errors.ts';

/** Retries of one request: 0.5 s, 1 s, 2 s … capped at 30 s, six attempts in all. */
export const SYNC_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 'full' };
export const SYNC_MAX_ATTEMPTS = 6;
const RETRY_AFTER_MAX_MS = 5 * 60_000;

/** A request that failed every attempt, or was refused by policy; `status` when the server answered. */
export class HttpCallFailed extends Error {
  override readonly name = 'HttpCallFailed';
  readonly code = 'SYNC_HTTP_FAILED';
  readonly retryable = true;
  readonly status: number | undefined;
  readonly attempts: number;
  readonly body: string | undefined;
  constructor(message: string, status: number | undefined, attempts: number, body?: string) {
    super(message);
    this.status = status;
    this.attempts = attempts;
    this.body = body;
  }
}

export interface HttpCallerOptions {
  readonly send: Deliverer;
  readonly clock: Clock;
  /** Requests per second for this side, or undefined for no limit. */
  readonly perSecond?: { readonly perSecond: number; readonly burst: number } | undefined;
  /** Opened by target-wide failures; undefined for the source. */
  readonly breaker?: CircuitBreaker | undefined;
  /** No wait may end after this (epoch ms). */
  readonly deadline: number;
  readonly signal: AbortSignal;
  /** Called for every 429/503-with-hint (metrics, counters). */
  readonly onThrottled?: () => void;
  readonly random?: () => number;
}

export class HttpCaller {
  private readonly o: HttpCallerOptions;
  private readonly bucket: TokenBucket | undefined;
  private readonly throttle: ThrottleController | undefined;
  /** No request starts before this (the latest Retry-After). */
  private holdUntil = 0;
  /** Requests made, attempts included. */
  requests = 0;
  throttled = 0;

  constructor(options: HttpCallerOptions) {
    this.o = options;
    if (options.perSecond) {
      this.bucket = new TokenBucket({ perSecond: options.perSecond.perSecond, burst: options.perSecond.burst, clock: options.clock });
      this.throttle = new ThrottleController({ perSecond: options.perSecond.perSecond }, options.clock);
    }
  }

  /** Sends `request` until it gets an answer worth returning; see the file header. */
  async call(request: Omit<DeliveryRequest, 'signal'>, retryStatus: (status: number) => boolean = defaultRetryable): Promise<DeliveryResponse> {
    const { clock, signal } = this.o;
    let lastError = 'no attempt made';
    let lastStatus: number | undefined;
    let lastBody: string | undefined;
    for (let attempt = 1; attempt <= SYNC_MAX_ATTEMPTS; attempt++) {
      await this.admit();
      const breaker = this.o.breaker;
      if (breaker && !breaker.tryAcquire()) throw new TargetUnavailableError('circuit open: the target failed too often recently; the next run tries again');
      this.requests++;
      let response: DeliveryResponse;
      try {
        response = await this.o.send.deliver({ ...request, signal });
      } catch (err) {
        if (signal.aborted) throw new RunCancelledError('run cancelled', { cause: err });
        const outcome = outcomeOfError(err);
        breaker?.record(outcome.kind === 'refused' ? 'neutral' : 'failure');
        lastError = err instanceof Error ? err.message : String(err);
        if (outcome.kind === 'refused') throw new HttpCallFailed(lastError, undefined, attempt);
        if (attempt < SYNC_MAX_ATTEMPTS) await this.wait(backoffDelay(attempt, SYNC_BACKOFF, this.o.random));
        continue;
      }
      const s = response.status;
      const retryAfterMs = parseRetryAfter(response.headers['retry-after'], { now: clock.now(), maxMs: RETRY_AFTER_MAX_MS });
      if (s === 429 || (s === 503 && retryAfterMs !== undefined)) {
        this.throttled++;
        this.o.onThrottled?.();
        breaker?.record('neutral');
        const hold = retryDelay({ attempt, backoff: SYNC_BACKOFF, retryAfterMs, retryAfterMaxMs: RETRY_AFTER_MAX_MS, random: this.o.random });
        this.holdUntil = Math.max(this.holdUntil, clock.now() + hold);
        if (this.throttle && this.bucket) {
          this.throttle.onThrottle(retryAfterMs);
          this.bucket.setRate(Math.max(0.01, this.throttle.currentRate()));
        }
        lastError = `HTTP ${s} (throttled)`;
        lastStatus = s;
        continue;
      }
      if (s === 401 || s === 403) {
        breaker?.record('failure');
        throw new TargetUnavailableError(`HTTP ${s}: credentials refused`, s);
      }
      if (s >= 500 || retryStatus(s)) {
        breaker?.record(s >= 500 ? 'failure' : 'neutral');
        lastError = `HTTP ${s}`;
        lastStatus = s;
        lastBody = response.body.slice(0, 1024);
        if (attempt < SYNC_MAX_ATTEMPTS) await this.wait(backoffDelay(attempt, SYNC_BACKOFF, this.o.random));
        continue;
      }
      breaker?.record('success');
      if (this.throttle && this.bucket) this.bucket.setRate(Math.max(0.01, this.throttle.currentRate()));
      return response;
    }
    throw new HttpCallFailed(`${lastError} after ${SYNC_MAX_ATTEMPTS} attempts`, lastStatus, SYNC_MAX_ATTEMPTS, lastBody);
  }

  /** Waits for the Retry-After hold and a token; refuses a wait that would pass the deadline. */
  private async admit(): Promise<void> {
    const { clock } = this.o;
    for (;;) {
      const now = clock.now();
      if (this.holdUntil > now) {
        await this.wait(this.holdUntil - now);
        continue;
      }
      if (!this.bucket) return;
      if (this.bucket.tryTake()) return;
      await this.wait(Math.max(1, this.bucket.waitTime()));
    }
  }

  private async wait(ms: number): Promise<void> {
    const { clock, signal } = this.o;
    if (clock.now() + ms > this.o.deadline) {
      throw new RunBudgetExhaustedError(`a wait of ${Math.ceil(ms / 1000)}s (rate limit or Retry-After) would run past the run's deadline ${new Date(this.o.deadline).toISOString()}`);
    }
    try {
      await clock.sleep(ms, signal);
    } catch (err) {
      throw new RunCancelledError('run cancelled', { cause: err });
    }
  }
}

function defaultRetryable(status: number): boolean {
  return status === 408 || status === 425;
}
