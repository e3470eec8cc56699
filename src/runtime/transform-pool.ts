/**
 * JSONata evaluation off the main thread, in a pool of worker threads shared by every pipeline
 * of the process, so that a deadline is really enforced: an evaluation that outlives its time
 * box has its worker terminated (V8 stops even a single backtracking regex step) and replaced,
 * and the event fails with `TransformTimeoutError`. The main thread — NATS, HTTP delivery, the
 * Lease renewals — never runs user code for longer than a structured clone.
 *
 * Expected flow: the composition root creates one pool (`--transform-workers`), passes it to the
 * runtime supervisor (which hands it to every pipeline), and `close()`s it after the pipelines
 * have stopped.
 *
 * Guarantees:
 * - Every `evaluate` settles: with the value, with the worker's typed error (`TransformError`,
 *   `TransformDepthError`, `TransformTimeoutError`), with `TransformTimeoutError` when the pool had
 *   to terminate the worker (`timeoutMs + killGraceMs` after the evaluation started), with
 *   `TransformQueueTimeoutError` when no worker became free within `maxQueueWaitMs`, or with
 *   `TransformWorkerError` when the worker died or could not start.
 * - The time box covers the evaluation only: it starts when a worker reaches the task (a worker is
 *   given up to `tasksPerWorker` tasks at once and runs them in order; the next one's time box
 *   starts when the previous one's answer arrives), not while the task waits, nor while a worker
 *   starts. A worker that is terminated or dies fails only the task it was running; the tasks it
 *   had not reached go back to the head of the queue. Waiting is bounded separately by
 *   `maxQueueWaitMs`; so a task settles within `maxQueueWaitMs + timeoutMs + killGraceMs`, plus a
 *   worker's start-up.
 * - Waiting is fair across keys (Integrations): round robin, FIFO within a key (`FairQueue`).
 *   A worker's line holds several tasks only of one Integration and only while no other waits,
 *   so a task of another Integration waits behind at most one line (`tasksPerWorker` tasks).
 * - At most `size` workers exist; they start lazily, when a task needs one, and a replacement
 *   starts only when a task is waiting.
 *
 * Caveats: the result crosses threads by structured clone, so it is a plain copy (jsonata's
 * null-prototype objects become plain objects); a value with a function nested inside fails with
 * `TransformError` `not-a-value` rather than losing the function silently in the body encoder.
 */
import { Worker } from 'node:worker_threads';
import type { Clock, Logger } from '../observability/index.ts';
import { TransformError, TransformQueueTimeoutError, TransformTimeoutError, TransformWorkerError } from './errors.ts';
import { FairQueue } from './fair-queue.ts';
import type { TransformLimits } from './transform.ts';
import { deserializeTransformError, isWorkerReply, type EvaluateRequest } from './transform-protocol.ts';

/** One JSONata evaluation: `source` is the expression (compiled once per worker), `key` the Integration it belongs to. */
export interface JsonataTask {
  readonly key: string;
  readonly source: string;
  readonly data: unknown;
  readonly limits: TransformLimits;
}

/** What a pipeline needs: evaluate one event's JSONata transform somewhere that can be stopped. */
export interface JsonataEvaluator {
  evaluate(task: JsonataTask): Promise<unknown>;
}

/** What the pool tells about a worker thread. */
export interface WorkerEvents {
  message(value: unknown): void;
  error(err: Error): void;
  exit(code: number): void;
}

/** What the pool does to a worker thread. */
export interface WorkerHandle {
  post(request: EvaluateRequest): void;
  terminate(): Promise<void>;
}

/**
 * Starts one worker thread wired to `events`, which it must not call before returning. Tests pass
 * a fake; production uses `workerThreadSpawner`.
 */
export type SpawnWorker = (events: WorkerEvents) => WorkerHandle;

export interface TransformPoolMetrics {
  /** A worker was terminated or lost: `timeout` (killed past its deadline), `exited` (died while working), `start` (never became ready). */
  workerReplaced(reason: 'timeout' | 'exited' | 'start'): void;
  queueDepth(depth: number): void;
}

export interface TransformPoolOptions {
  /** Worker threads at most; an integer ≥ 1. */
  readonly size: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly spawn?: SpawnWorker;
  /** Longest a task may wait for a free worker; default 10 s. */
  readonly maxQueueWaitMs?: number;
  /**
   * Time past the time box before the worker is terminated; default 100 ms. The worker stops
   * most runaway expressions itself at the time box (between evaluation steps) and stays alive;
   * terminating (and starting a new worker) is for the step that cannot be interrupted.
   */
  readonly killGraceMs?: number;
  readonly metrics?: TransformPoolMetrics;
  /**
   * Tasks a worker is given at once (default 4): it runs them one after the other, so it never
   * waits a round trip to the main thread for its next task. Each task's time box still starts
   * when the worker reaches it (when the previous one's answer arrives).
   */
  readonly tasksPerWorker?: number;
}

export const DEFAULT_MAX_QUEUE_WAIT_MS = 10_000;
export const DEFAULT_KILL_GRACE_MS = 100;
export const DEFAULT_TASKS_PER_WORKER = 4;
/**
 * Heap limit of one worker: an expression that builds a huge value fails its event with
 * `TransformWorkerError` (ERR_WORKER_OUT_OF_MEMORY) instead of exhausting the process's memory.
 */
export const DEFAULT_WORKER_HEAP_MB = 256;

interface Pending {
  readonly id: number;
  readonly key: string;
  readonly request: EvaluateRequest;
  readonly enqueuedAt: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  cancelQueueTimer: () => void;
}

interface Slot {
  readonly handle: WorkerHandle;
  state: 'starting' | 'ready' | 'gone';
  /** Tasks handed to this worker, in the order it runs them: the first is running, the rest wait in it. */
  readonly line: Pending[];
  /** The first task's time box. */
  running: { readonly pending: Pending; readonly startedAt: number; readonly cancelDeadline: () => void } | undefined;
  /** An uncaught error the worker reported before exiting, for the exit's message. */
  lastError: Error | undefined;
}

export class TransformPool implements JsonataEvaluator {
  private readonly size: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly spawn: SpawnWorker;
  private readonly maxQueueWaitMs: number;
  private readonly killGraceMs: number;
  private readonly metrics: TransformPoolMetrics | undefined;
  private readonly tasksPerWorker: number;
  private readonly queue = new FairQueue<Pending>();
  private readonly slots = new Set<Slot>();
  private nextId = 1;
  private closed = false;

  /** No thread starts here: workers start when the first task needs one. @throws RangeError on a bad size. */
  constructor(options: TransformPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`transform pool size must be an integer ≥ 1, got ${options.size}`);
    this.size = options.size;
    this.clock = options.clock;
    this.log = options.logger.child({ component: 'transform-pool' });
    this.spawn = options.spawn ?? workerThreadSpawner();
    this.maxQueueWaitMs = options.maxQueueWaitMs ?? DEFAULT_MAX_QUEUE_WAIT_MS;
    this.killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.metrics = options.metrics;
    this.tasksPerWorker = options.tasksPerWorker ?? DEFAULT_TASKS_PER_WORKER;
    if (!Number.isInteger(this.tasksPerWorker) || this.tasksPerWorker < 1) throw new RangeError(`tasksPerWorker must be an integer ≥ 1, got ${this.tasksPerWorker}`);
  }

  /** Workers alive (starting, idle or busy); for tests and diagnostics. */
  get workers(): number {
    return this.slots.size;
  }

  /** Tasks waiting for a worker. */
  get waiting(): number {
    return this.queue.size;
  }

  /**
   * Evaluates `task.source` on `task.data` in a worker. Called by a pipeline once per event whose
   * transform is JSONata. See the module comment for how it settles.
   *
   * @throws (rejects) RangeError when the limits are not positive; Error once the pool is closed.
   */
  evaluate(task: JsonataTask): Promise<unknown> {
    const { timeoutMs, maxDepth } = task.limits;
    if (!(timeoutMs > 0) || !(maxDepth >= 1)) {
      return Promise.reject(new RangeError(`transform limits must be positive, got timeoutMs=${timeoutMs} maxDepth=${maxDepth}`));
    }
    if (this.closed) return Promise.reject(new Error('transform pool is closed'));
    return new Promise<unknown>((resolve, reject) => {
      const id = this.nextId++;
      const pending: Pending = {
        id,
        key: task.key,
        request: { id, source: task.source, data: task.data, timeoutMs, maxDepth },
        enqueuedAt: this.clock.now(),
        resolve,
        reject,
        cancelQueueTimer: () => undefined,
      };
      this.queue.push(task.key, pending);
      pending.cancelQueueTimer = this.clock.setTimer(() => {
        this.onQueueTimeout(pending);
      }, this.maxQueueWaitMs);
      this.pump();
    });
  }

  /**
   * Fails every waiting and running task, and terminates every worker. Called once, after the
   * pipelines have stopped (then nothing is waiting or running).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.drain()) {
      pending.cancelQueueTimer();
      pending.reject(new Error('transform pool is closed'));
    }
    const slots = [...this.slots];
    this.slots.clear();
    for (const slot of slots) {
      const line = [...slot.line];
      this.retire(slot, false);
      for (const pending of line) pending.reject(new Error('transform pool is closed'));
    }
    this.metrics?.queueDepth(0);
    await Promise.all(slots.map((s) => s.handle.terminate().catch(() => undefined)));
  }

  /**
   * Hands waiting tasks to workers: first one to each worker with nothing to do, then starts
   * workers (up to `size`) for the tasks still waiting, then deepens the workers' lines.
   */
  private pump(): void {
    if (this.closed) return;
    this.fillEmptyLines();
    let starting = 0;
    for (const slot of this.slots) if (slot.state === 'starting') starting += 1;
    while (this.slots.size < this.size && starting < this.queue.size) {
      this.startWorker();
      starting += 1;
    }
    this.deepenLines();
    this.metrics?.queueDepth(this.queue.size);
  }

  /** Gives each ready worker with an empty line one task. */
  private fillEmptyLines(): void {
    for (const slot of this.slots) {
      if (this.queue.size === 0) return;
      if (slot.state !== 'ready' || slot.line.length !== 0) continue;
      const pending = this.queue.shift();
      if (pending) this.dispatch(slot, pending);
    }
  }

  /**
   * Lines a worker's next tasks up behind the one it runs, up to `tasksPerWorker`, one per worker
   * per round — only tasks of the Integration the line already serves, and only while no other
   * Integration waits. So a stuck expression delays nothing but its own Integration's events, and
   * a task of another Integration waits behind at most one line.
   */
  private deepenLines(): void {
    for (let length = 1; length < this.tasksPerWorker && this.queue.size > 0; length++) {
      for (const slot of this.slots) {
        const head = slot.line[0];
        if (slot.state !== 'ready' || slot.line.length !== length || !head) continue;
        const pending = this.queue.shiftIfOnlyKey(head.key);
        if (pending) this.dispatch(slot, pending);
      }
    }
  }

  private startWorker(): void {
    // Filled in once spawn returns; workers never report before that (SpawnWorker's contract).
    const ref: { slot?: Slot } = {};
    const events: WorkerEvents = {
      message: (value) => {
        if (ref.slot) this.onMessage(ref.slot, value);
      },
      error: (err) => {
        if (ref.slot) ref.slot.lastError = err;
      },
      exit: (code) => {
        if (ref.slot) this.onExit(ref.slot, code);
      },
    };
    let handle: WorkerHandle;
    try {
      handle = this.spawn(events);
    } catch (err) {
      this.onStartFailed(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    ref.slot = { handle, state: 'starting', line: [], running: undefined, lastError: undefined };
    this.slots.add(ref.slot);
  }

  private dispatch(slot: Slot, pending: Pending): void {
    pending.cancelQueueTimer();
    slot.line.push(pending);
    if (slot.line.length === 1) this.startTimeBox(slot);
    try {
      slot.handle.post(pending.request);
    } catch (err) {
      // Data that structured clone refuses; decoded JSON never is, so this is a caller's bug.
      slot.line.pop();
      if (slot.line.length === 0) {
        slot.running?.cancelDeadline();
        slot.running = undefined;
      }
      pending.reject(new TransformError('expression', `transform input cannot be passed to a worker: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err }));
    }
  }

  /** Arms the time box of the task at the head of the worker's line, which the worker runs now. */
  private startTimeBox(slot: Slot): void {
    const pending = slot.line[0];
    if (!pending) return;
    const cancelDeadline = this.clock.setTimer(() => {
      this.onDeadline(slot, pending);
    }, pending.request.timeoutMs + this.killGraceMs);
    slot.running = { pending, startedAt: this.clock.now(), cancelDeadline };
  }

  private onMessage(slot: Slot, value: unknown): void {
    if (slot.state === 'gone') return;
    if (!isWorkerReply(value)) {
      this.log.error({ reply: typeof value }, 'malformed message from a transform worker; ignored');
      return;
    }
    if (value.type === 'ready') {
      if (slot.state === 'starting') {
        slot.state = 'ready';
        this.pump();
      }
      return;
    }
    const running = slot.running;
    // A reply for a task that is no longer this worker's: nothing waits for it.
    if (running?.pending.id !== value.id) return;
    running.cancelDeadline();
    slot.line.shift();
    slot.running = undefined;
    this.startTimeBox(slot);
    if (value.type === 'result') running.pending.resolve(value.value);
    else running.pending.reject(deserializeTransformError(value.error));
    this.pump();
  }

  private onDeadline(slot: Slot, pending: Pending): void {
    const running = slot.running;
    if (slot.state === 'gone' || running?.pending !== pending) return;
    const elapsedMs = this.clock.now() - running.startedAt;
    this.giveBack(this.retire(slot));
    this.metrics?.workerReplaced('timeout');
    this.log.warn({ integration: pending.key, timeoutMs: pending.request.timeoutMs, elapsedMs }, 'transform evaluation outlived its time box; worker terminated and replaced');
    pending.reject(new TransformTimeoutError(pending.request.timeoutMs, elapsedMs));
    this.pump();
  }

  private onExit(slot: Slot, code: number): void {
    if (slot.state === 'gone') return;
    const wasStarting = slot.state === 'starting';
    const task = slot.running;
    this.giveBack(this.retire(slot, false));
    const why = slot.lastError ? `: ${slot.lastError.message}` : '';
    if (wasStarting) {
      this.onStartFailed(new Error(`transform worker exited with code ${code} before it was ready${why}`, { cause: slot.lastError }));
      return;
    }
    if (task) {
      this.metrics?.workerReplaced('exited');
      this.log.error({ integration: task.pending.key, code, err: slot.lastError?.message }, 'transform worker died during an evaluation; replaced');
      task.pending.reject(new TransformWorkerError('exited', `transform worker died during the evaluation (exit code ${code}${why})`, { cause: slot.lastError }));
    } else {
      this.log.warn({ code, err: slot.lastError?.message }, 'idle transform worker exited; a new one starts when needed');
    }
    this.pump();
  }

  /**
   * A worker that cannot start fails the oldest waiting task rather than being retried in a
   * loop: each failure costs one task, so a broken installation parks events loudly and stops
   * spawning once nothing waits.
   */
  private onStartFailed(err: Error): void {
    this.metrics?.workerReplaced('start');
    this.log.error({ err: err.message }, 'transform worker could not start');
    const pending = this.queue.shift();
    if (pending) {
      pending.cancelQueueTimer();
      pending.reject(new TransformWorkerError('start', `transform worker could not start: ${err.message}`, { cause: err }));
    }
    this.pump();
  }

  /**
   * Takes a worker out of the pool, terminating it unless it is already gone. Returns the tasks
   * of its line it had not started: they are not failed, they go back to the queue.
   */
  private retire(slot: Slot, terminate = true): Pending[] {
    slot.state = 'gone';
    slot.running?.cancelDeadline();
    slot.running = undefined;
    const notStarted = slot.line.splice(0).slice(1);
    this.slots.delete(slot);
    if (terminate) {
      slot.handle.terminate().catch((err: unknown) => {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'terminating a transform worker failed');
      });
    }
    return notStarted;
  }

  /** Puts tasks a lost worker never started back at the head of the queue, in their order, with a new wait bound. */
  private giveBack(tasks: readonly Pending[]): void {
    for (let i = tasks.length - 1; i >= 0; i--) {
      const pending = tasks[i];
      if (!pending) continue;
      this.queue.returnItem(pending.key, pending);
      pending.cancelQueueTimer = this.clock.setTimer(() => {
        this.onQueueTimeout(pending);
      }, this.maxQueueWaitMs);
    }
  }

  private onQueueTimeout(pending: Pending): void {
    if (!this.queue.remove(pending.key, pending)) return;
    const waitedMs = this.clock.now() - pending.enqueuedAt;
    this.log.warn({ integration: pending.key, waitedMs, waiting: this.queue.size, workers: this.slots.size }, 'no transform worker became free in time');
    pending.reject(new TransformQueueTimeoutError(waitedMs, this.queue.size));
    this.metrics?.queueDepth(this.queue.size);
  }
}

/**
 * The worker script: `.ts` when this module runs from source under type stripping (dev, tests),
 * `.js` when it runs compiled from `dist/` (the image). `rewriteRelativeImportExtensions` only
 * rewrites import specifiers, not this URL, hence the choice by our own extension.
 */
export const TRANSFORM_WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './transform-worker.ts' : './transform-worker.js', import.meta.url);

/** Spawns real worker threads running `transform-worker`, each with a bounded heap. */
export function workerThreadSpawner(options: { readonly heapMb?: number; readonly url?: URL } = {}): SpawnWorker {
  return (events) => {
    const worker = new Worker(options.url ?? TRANSFORM_WORKER_URL, {
      resourceLimits: { maxOldGenerationSizeMb: options.heapMb ?? DEFAULT_WORKER_HEAP_MB },
      // The operator's own flags (e.g. --inspect) are not meant for the workers.
      execArgv: [],
    });
    // A starting or busy worker keeps the process alive (someone awaits it); an idle one must
    // not on its own, should a failing start-up skip close().
    worker.on('message', (value: unknown) => {
      worker.unref();
      events.message(value);
    });
    worker.on('error', (err: Error) => {
      events.error(err);
    });
    worker.on('exit', (code: number) => {
      events.exit(code);
    });
    return {
      post: (request) => {
        worker.ref();
        worker.postMessage(request);
      },
      terminate: async () => {
        await worker.terminate();
      },
    };
  };
}
