/**
 * The controller runner: takes keys from a {@link WorkQueue} and reconciles them with bounded
 * parallelism (kube-rs's `controller/runner.rs`, controller-runtime's `controller`).
 *
 * The reconcile contract (controller-runtime's, written here so reconcilers can rely on it):
 * - `reconcile(key, signal)` is called with a key, never an event: read the current object from
 *   the store and converge. It may be called any number of times for the same state.
 * - Resolving `{}` → success: the key's backoff is forgotten; it comes back on the next change.
 * - Resolving `{ requeueAfter: ms }` → the backoff is forgotten and the key is reconciled again
 *   after `ms` (a periodic requeue is the recommended safety net).
 * - Throwing a {@link TerminalError} → logged and counted, NOT requeued.
 * - Throwing anything else → logged and counted, requeued with per-key exponential backoff.
 * - One key is never reconciled by two workers at once; at most `concurrency` keys run at once.
 * - `signal` aborts when the controller stops; a reconcile should return promptly then.
 *
 * The mapping from an error to what happens next is {@link defaultErrorPolicy}, a pure function
 * that can be replaced.
 */
import type { Clock, Counter, Gauge, Histogram, Logger, Registry } from '../observability/index.ts';
import { TerminalError, toError } from './errors.ts';
import { counter, gauge, histogram, reconcileBuckets } from './metrics.ts';
import type { WorkQueue } from './work-queue.ts';

/** What a reconcile asks for when it succeeded. */
export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (> 0). */
  readonly requeueAfter?: number;
}

export type Reconciler = (key: string, signal: AbortSignal) => Promise<ReconcileResult>;

/** What to do with a key whose reconcile threw. */
export type ErrorAction =
  /** Requeue with the queue's per-key exponential backoff. */
  | { readonly type: 'backoff' }
  /** Requeue after a fixed delay, forgetting the backoff. */
  | { readonly type: 'requeue-after'; readonly delayMs: number }
  /** Do not requeue (terminal). */
  | { readonly type: 'drop' };

export type ErrorPolicy = (error: Error) => ErrorAction;

/** {@link TerminalError} → drop; anything else → backoff. */
export const defaultErrorPolicy: ErrorPolicy = (error) =>
  error instanceof TerminalError ? { type: 'drop' } : { type: 'backoff' };

/** The `result` label of `controller_runtime_reconcile_total`. */
export type ReconcileResultLabel = 'success' | 'error' | 'requeue' | 'requeue_after';

/** What the runner does with the queue after one reconcile: the pure part of the runner. */
export interface QueueDecision {
  readonly forget: boolean;
  readonly requeue: { readonly type: 'none' } | { readonly type: 'backoff' } | { readonly type: 'after'; readonly delayMs: number };
  readonly result: ReconcileResultLabel;
  readonly error: 'none' | 'retryable' | 'terminal';
}

/** Maps the outcome of one reconcile to the queue actions and metric labels. Pure. */
export function decide(
  outcome: { readonly ok: true; readonly result: ReconcileResult } | { readonly ok: false; readonly error: Error },
  policy: ErrorPolicy = defaultErrorPolicy,
): QueueDecision {
  if (outcome.ok) {
    const after = outcome.result.requeueAfter;
    if (after !== undefined && after > 0) {
      return { forget: true, requeue: { type: 'after', delayMs: after }, result: 'requeue_after', error: 'none' };
    }
    return { forget: true, requeue: { type: 'none' }, result: 'success', error: 'none' };
  }
  const action = policy(outcome.error);
  switch (action.type) {
    case 'drop':
      return { forget: true, requeue: { type: 'none' }, result: 'error', error: 'terminal' };
    case 'requeue-after':
      return { forget: true, requeue: { type: 'after', delayMs: action.delayMs }, result: 'error', error: 'retryable' };
    case 'backoff':
      return { forget: false, requeue: { type: 'backoff' }, result: 'error', error: 'retryable' };
  }
}

export interface ControllerOptions {
  /** The `controller` metric label and log field. */
  readonly name: string;
  readonly queue: WorkQueue;
  readonly reconcile: Reconciler;
  /**
   * Every key this controller is responsible for (usually its cache's keys). Enqueued at the
   * start of each run, so a run never relies on what a previous run did or on adds that arrived
   * while the controller was stopped (a follower's queue ignores them).
   */
  readonly keys?: () => Iterable<string>;
  /** Keys reconciled at once; default 1. */
  readonly concurrency?: number;
  readonly errorPolicy?: ErrorPolicy;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
}

interface Metrics {
  readonly total: Counter<'controller' | 'result'>;
  readonly errors: Counter<'controller'>;
  readonly terminal: Counter<'controller'>;
  readonly time: Histogram<'controller'>;
  readonly active: Gauge<'controller'>;
  readonly max: Gauge<'controller'>;
}

/**
 * Runs reconciles for the keys of one queue under the contract in the file header. A manager
 * `Runnable`, normally in the `leader` group.
 */
export class Controller {
  readonly name: string;
  private readonly queue: WorkQueue;
  private readonly reconcile: Reconciler;
  private readonly keys: () => Iterable<string>;
  private readonly concurrency: number;
  private readonly policy: ErrorPolicy;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private running = false;

  constructor(options: ControllerOptions) {
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be an integer ≥ 1');
    this.name = options.name;
    this.queue = options.queue;
    this.reconcile = options.reconcile;
    this.keys = options.keys ?? (() => []);
    this.concurrency = concurrency;
    this.policy = options.errorPolicy ?? defaultErrorPolicy;
    this.clock = options.clock;
    this.logger = options.logger.child({ controller: options.name });
    const r = options.registry;
    this.metrics = {
      total: counter(r, {
        name: 'controller_runtime_reconcile_total',
        help: 'Total number of reconciliations per controller',
        labelNames: ['controller', 'result'],
      }),
      errors: counter(r, {
        name: 'controller_runtime_reconcile_errors_total',
        help: 'Total number of reconciliation errors per controller',
        labelNames: ['controller'],
      }),
      terminal: counter(r, {
        name: 'controller_runtime_terminal_reconcile_errors_total',
        help: 'Total number of terminal reconciliation errors per controller',
        labelNames: ['controller'],
      }),
      time: histogram(r, {
        name: 'controller_runtime_reconcile_time_seconds',
        help: 'Length of time per reconciliation per controller',
        labelNames: ['controller'],
        buckets: reconcileBuckets,
      }),
      active: gauge(r, {
        name: 'controller_runtime_active_workers',
        help: 'Number of currently used workers per controller',
        labelNames: ['controller'],
      }),
      max: gauge(r, {
        name: 'controller_runtime_max_concurrent_reconciles',
        help: 'Maximum number of concurrent reconciles per controller',
        labelNames: ['controller'],
      }),
    };
    const c = { controller: this.name };
    for (const result of ['success', 'error', 'requeue', 'requeue_after'] as const) this.metrics.total.inc({ ...c, result }, 0);
    this.metrics.errors.inc(c, 0);
    this.metrics.terminal.inc(c, 0);
  }

  /**
   * Runs `concurrency` workers until `signal` aborts, then shuts the queue down and resolves once
   * every running reconcile has returned. Never rejects: reconcile failures are handled per key.
   * Can run again after it stopped (each leader term is one run): the queue is reopened and
   * every key from `keys()` is enqueued, level-based. Throws if started while running.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error(`controller ${this.name} is already running`);
    this.queue.reopen();
    const initial = [...this.keys()];
    this.running = true;
    for (const key of initial) this.queue.add(key);
    const c = { controller: this.name };
    this.metrics.max.set(c, this.concurrency);
    this.metrics.active.set(c, 0);
    const stop = (): void => {
      void this.queue.shutdown();
    };
    signal.addEventListener('abort', stop, { once: true });
    if (signal.aborted) stop();
    this.logger.info({ concurrency: this.concurrency, keys: initial.length }, 'controller started');
    try {
      const workers = Array.from({ length: this.concurrency }, () => this.worker(signal));
      await Promise.all(workers);
      await this.queue.shutdown();
    } finally {
      signal.removeEventListener('abort', stop);
      this.running = false;
      this.logger.info('controller stopped');
    }
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.processKey(key, signal);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async processKey(key: string, signal: AbortSignal): Promise<void> {
    const c = { controller: this.name };
    this.metrics.active.inc(c);
    const started = this.clock.now();
    let outcome: { ok: true; result: ReconcileResult } | { ok: false; error: Error };
    try {
      outcome = { ok: true, result: await this.reconcile(key, signal) };
    } catch (err) {
      outcome = { ok: false, error: toError(err) };
    } finally {
      this.metrics.active.dec(c);
      this.metrics.time.observe(c, (this.clock.now() - started) / 1000);
    }

    if (!outcome.ok && signal.aborted) {
      // Stopping: the reconcile was cut short by us. Not a failure of the object; the next
      // start reconciles it again.
      this.logger.debug({ key, err: outcome.error }, 'reconcile interrupted by shutdown');
      return;
    }

    const decision = decide(outcome, this.policy);
    this.metrics.total.inc({ ...c, result: decision.result });
    if (decision.error !== 'none') this.metrics.errors.inc(c);
    if (decision.error === 'terminal') this.metrics.terminal.inc(c);
    if (decision.forget) this.queue.forget(key);
    switch (decision.requeue.type) {
      case 'backoff':
        this.queue.addRateLimited(key);
        break;
      case 'after':
        this.queue.addAfter(key, decision.requeue.delayMs);
        break;
      case 'none':
        break;
    }

    if (!outcome.ok) {
      const fields = { key, err: outcome.error, retries: this.queue.numRequeues(key) };
      if (decision.error === 'terminal') this.logger.error(fields, 'reconcile failed terminally; not requeued');
      else this.logger.warn({ ...fields, requeue: decision.requeue.type }, 'reconcile failed; requeued');
    } else {
      this.logger.debug({ key, result: decision.result }, 'reconciled');
    }
  }
}
