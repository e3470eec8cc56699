/**
 * A rate-limited, delaying work queue of keys with client-go / controller-runtime semantics.
 *
 * Expected flow: event handlers `add(key)`; workers `get()` a key, reconcile it, then call
 * `done(key)` — always, even on failure — followed by `forget(key)` (success) or
 * `addRateLimited(key)` (retry with backoff) or `addAfter(key, ms)` (come back later).
 *
 * Guarantees:
 * - A key waiting in the queue is there once, however often it is added (dedupe).
 * - A key is never handed to two workers at once. Added again while being processed, it is
 *   marked dirty and queued again once the worker calls `done`, so no change is missed.
 * - `addAfter` makes a key available only once the clock has advanced by the delay; of several
 *   pending delays for one key the earliest wins.
 * - After `shutdown()` nothing more is handed out; it resolves once every handed-out key is done.
 * - `reopen()` after a completed shutdown makes the queue usable again (a new leader term).
 *
 * Caveats: keys queued but not started when the queue shuts down are dropped, and adds while it
 * is shut down are ignored. That is safe because reconciliation is level-based: whoever reopens
 * the queue enqueues every object it is responsible for (see `Controller`).
 */
import type { Clock, Counter, Gauge, Histogram, Registry } from '../observability/index.ts';
import { backoffDelay } from './backoff.ts';
import { counter, gauge, histogram, workQueueBuckets } from './metrics.ts';

/** Decides how long a key waits before its next retry. */
export interface RateLimiter {
  /** The delay before the next retry of `key`; each call counts as one more failure. */
  when(key: string): number;
  /** Clears the failure history of `key` (after a success). */
  forget(key: string): void;
  /** Failures recorded for `key` since the last `forget`. */
  retries(key: string): number;
}

export interface ExponentialRateLimiterOptions {
  /** Delay after the first failure; default 5 ms (client-go's default controller rate limiter). */
  readonly baseDelayMs?: number;
  /** Cap; default 1000 s (client-go's). */
  readonly maxDelayMs?: number;
  readonly factor?: number;
}

/** Per-key exponential backoff: `base × factor^failures`, capped (client-go's ItemExponentialFailureRateLimiter). */
export class ExponentialRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly factor: number;

  constructor(options: ExponentialRateLimiterOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 1_000_000;
    this.factor = options.factor ?? 2;
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return backoffDelay({ initialMs: this.baseDelayMs, maxMs: this.maxDelayMs, factor: this.factor }, n);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

export interface WorkQueueOptions {
  /** Names the queue in metrics (`name` label) and logs; usually the controller's name. */
  readonly name: string;
  readonly clock: Clock;
  readonly registry: Registry;
  /** Default: {@link ExponentialRateLimiter} with client-go's defaults. */
  readonly rateLimiter?: RateLimiter;
}

interface Delayed {
  readonly at: number;
  readonly cancel: () => void;
}

interface Metrics {
  readonly depth: Gauge<'name'>;
  readonly adds: Counter<'name'>;
  readonly queueDuration: Histogram<'name'>;
  readonly workDuration: Histogram<'name'>;
  readonly retries: Counter<'name'>;
}

/**
 * A deduplicating, delaying, rate-limited queue of keys (see the file header for the flow and
 * guarantees). One queue per controller; its `name` labels the `workqueue_*` metrics.
 */
export class WorkQueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly metrics: Metrics;
  /** Keys ready to be handed out, in order. Each is also in `dirty`. */
  private queue: string[] = [];
  /** Keys that need processing: queued, or re-added while processing. */
  private readonly dirty = new Set<string>();
  /** Keys handed out and not yet done → when they were handed out. */
  private readonly processing = new Map<string, number>();
  /** When each queued key was queued, for `workqueue_queue_duration_seconds`. */
  private readonly queuedAt = new Map<string, number>();
  private readonly delayed = new Map<string, Delayed>();
  private waiters: ((key: string | undefined) => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.clock = options.clock;
    this.limiter = options.rateLimiter ?? new ExponentialRateLimiter();
    const labelNames = ['name'] as const;
    const r = options.registry;
    this.metrics = {
      depth: gauge(r, { name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames }),
      adds: counter(r, { name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames }),
      queueDuration: histogram(r, {
        name: 'workqueue_queue_duration_seconds',
        help: 'How long in seconds an item stays in workqueue before being requested',
        labelNames,
        buckets: workQueueBuckets,
      }),
      workDuration: histogram(r, {
        name: 'workqueue_work_duration_seconds',
        help: 'How long in seconds processing an item from workqueue takes.',
        labelNames,
        buckets: workQueueBuckets,
      }),
      retries: counter(r, { name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames }),
    };
    // Make the series exist at 0 so dashboards and alerts see the queue before its first add.
    this.metrics.depth.set({ name: this.name }, 0);
    this.metrics.adds.inc({ name: this.name }, 0);
    this.metrics.retries.inc({ name: this.name }, 0);
  }

  /** Keys waiting to be handed out (not counting delayed or in-process keys). */
  get length(): number {
    return this.queue.length;
  }

  /** True after `shutdown()`. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Queues `key` now. A no-op if it is already queued, or after shutdown. */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return;
    this.metrics.adds.inc({ name: this.name });
    this.dirty.add(key);
    // Being processed: `done` queues it again.
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /**
   * Queues `key` once `delayMs` has passed on the clock. If the key already waits for an earlier
   * time, that earlier time stands; a later one replaces nothing.
   */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const cancel = this.clock.setTimer(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, cancel });
  }

  /** Queues `key` after its rate limiter's next backoff delay (one more failure for that key). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.metrics.retries.inc({ name: this.name });
    this.addAfter(key, this.limiter.when(key));
  }

  /** Clears `key`'s backoff history; call after it was processed successfully. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Failures recorded for `key` since the last `forget`. */
  numRequeues(key: string): number {
    return this.limiter.retries(key);
  }

  /**
   * The next key to process, waiting until there is one. Resolves `undefined` when the queue has
   * shut down or `signal` aborted: the worker should then stop. The caller owns the key until it
   * calls `done(key)`.
   */
  get(signal?: AbortSignal): Promise<string | undefined> {
    if (this.shuttingDown || signal?.aborted) return Promise.resolve(undefined);
    if (this.queue.length > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => {
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      };
      const waiter = (key: string | undefined): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(key);
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Marks `key` as processed; if it was added meanwhile, it is queued again now. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    this.metrics.workDuration.observe({ name: this.name }, (this.clock.now() - started) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) this.enqueue(key);
    if (this.processing.size === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /**
   * Stops the queue: adds are ignored, delayed keys are cancelled, queued keys are dropped and
   * waiting `get()` calls resolve `undefined`. Resolves once every key handed out has been
   * `done` (drain). Safe to call more than once.
   */
  shutdown(): Promise<void> {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      for (const d of this.delayed.values()) d.cancel();
      this.delayed.clear();
      this.queue = [];
      this.queuedAt.clear();
      this.dirty.clear();
      this.metrics.depth.set({ name: this.name }, 0);
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w(undefined);
    }
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Opens a shut-down queue for a new run: adds are accepted and `get()` hands keys out again.
   * Nothing from before the shutdown survives (queued and delayed keys were dropped), so the
   * caller enqueues every key it needs. A no-op on an open queue. Throws if keys handed out
   * before the shutdown are still being processed: the previous run must have drained.
   */
  reopen(): void {
    if (!this.shuttingDown) return;
    if (this.processing.size > 0) throw new Error(`work queue ${this.name}: reopen while ${this.processing.size} keys are still in process`);
    this.shuttingDown = false;
  }

  private enqueue(key: string): void {
    const waiter = this.waiters.shift();
    this.queue.push(key);
    this.queuedAt.set(key, this.clock.now());
    if (waiter) {
      waiter(this.take());
      return;
    }
    this.metrics.depth.set({ name: this.name }, this.queue.length);
  }

  private take(): string {
    const key = this.queue.shift();
    if (key === undefined) throw new Error('work queue: take() on an empty queue');
    const now = this.clock.now();
    this.dirty.delete(key);
    this.processing.set(key, now);
    this.metrics.queueDuration.observe({ name: this.name }, (now - (this.queuedAt.get(key) ?? now)) / 1000);
    this.queuedAt.delete(key);
    this.metrics.depth.set({ name: this.name }, this.queue.length);
    return key;
  }
}
