/**
 * List + watch of one resource collection, feeding a {@link StoreWriter} and telling handlers
 * what changed (kube-rs's `watcher` + `reflector`, client-go's reflector).
 *
 * Expected flow: construct, `addHandler(...)` (usually "enqueue the key"), then `start(signal)`.
 * Reconcilers read `watcher.store`; `ready(signal)` resolves once the first list is stored.
 *
 * Guarantees:
 * - The store converges to the server's state: a full paginated list replaces it, then a watch
 *   from the list's resourceVersion applies every change. Whatever a relist discovers (objects
 *   added, changed or deleted while no watch was running) is reported to handlers as
 *   added/modified/deleted, so nothing is missed across a restart.
 * - Every failure is retried forever: after an error, a closed stream, a silent stream (the
 *   watchdog) or a 410 Gone (which also forces a relist) the watch restarts after a capped
 *   exponential backoff that resets after a healthy period. Each restart is counted in
 *   `ferry_watch_restarts_total{resource,reason}` with reason gone|error|closed|watchdog|timeout.
 * - With `resyncMs`, every cached object is re-emitted as `resync` periodically so handlers can
 *   re-enqueue it (a safety net, not a relist).
 * - Handlers run synchronously, in order; one that throws is logged and does not stop the others.
 * - A collection the API server does not serve (404: its CRD is not installed) is listed again
 *   every `notServedPollMs` until it is (with the backoff if it was served before), with one
 *   log line per change (an error naming `notServedHint` if it was never served), and `ready`
 *   resolves anyway, so one missing CRD does not hold up everything else. A 404 after the collection WAS served keeps the store as it is — a
 *   CRD is not registered for a moment after an API server restart, and an empty cache would
 *   look as if every object had been deleted — and the next successful list replaces it (and
 *   reports what really changed).
 *
 * Caveats:
 * - client-node's `Watch` aborts a stream that carried no data for 30 s. The API server sends
 *   bookmarks only when the resource's resourceVersion moved, so a quiet collection sends
 *   nothing. Each watch therefore asks the server to end it after `watchTimeoutSeconds` (< 30);
 *   such an ending is the protocol working ("expired"): the watch resumes at once from the last
 *   resourceVersion, without a relist, a backoff or a restart count.
 * - The watchdog (`watchdogMs`) must exceed `watchTimeoutSeconds`, since a healthy quiet stream
 *   is silent for that long.
 */
import { Watch, type KubeConfig } from './client-node.ts';
import type { Clock, Counter, Logger, Registry } from '../observability/index.ts';
import { Backoff } from './backoff.ts';
import { GoneError, KubeConfigError, UnavailableError, errorFromStatus, isGone, type KubeStatus } from './errors.ts';
import { KubeHttp } from './http.ts';
import { counter } from './metrics.ts';
import { objectKey, type KubeObject } from './object.ts';
import {
  classifyCleanClose,
  classifyWatchError,
  isNotServed,
  planRestart,
  servedTransition,
  type RestartReason,
  type ServedState,
  type WatchEnd,
} from './watch-policy.ts';
import { StoreWriter, type Store } from './store.ts';

export type WatchEventType = 'added' | 'modified' | 'deleted' | 'resync';

/**
 * Told about every change. `oldObj` is the previous version for `modified`; for `deleted`,
 * `obj` is the object's last known state. Must not block: enqueue and return.
 */
export type WatchHandler<T> = (type: WatchEventType, obj: T, oldObj?: T) => void;

export interface WatcherBackoffOptions {
  /** Default 800 ms (client-go's reflector). */
  readonly initialMs?: number;
  /** Default 30 s. */
  readonly maxMs?: number;
  /** Default 1.0: up to +100 % random spread. */
  readonly jitter?: number;
  /** A watch that stayed healthy this long resets the backoff; default 2 min. */
  readonly resetAfterMs?: number;
  readonly random?: () => number;
}

export interface WatcherOptions<T extends KubeObject> {
  readonly kubeConfig: KubeConfig;
  /** Collection path, e.g. `/api/v1/secrets` or `/apis/ferry.dev/v1alpha1/integrations`. */
  readonly path: string;
  /** The `resource` metric label and log field; defaults to `path`. */
  readonly resource?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Objects per list page; default 500. */
  readonly pageSize?: number;
  /** The server ends each watch after this long; default 20, must be below 30 (see Caveats). */
  readonly watchTimeoutSeconds?: number;
  /** Abort and restart a watch that received nothing for this long; default 27 s. */
  readonly watchdogMs?: number;
  /** Re-emit every cached object this often; 0 (default) turns it off. */
  readonly resyncMs?: number;
  readonly backoff?: WatcherBackoffOptions;
  /** Per list-page request timeout; default 60 s. */
  readonly requestTimeoutMs?: number;
  /**
   * Said when the API server does not serve the collection (404), e.g. the command that installs
   * its CRD.
   */
  readonly notServedHint?: string;
  /** How often a collection that was never served is listed again; default 5 s. */
  readonly notServedPollMs?: number;
  /** The store to fill; a new one by default (pass one to configure indexers). */
  readonly store?: StoreWriter<T>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
}

interface ListResponse {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items?: readonly KubeObject[];
}

interface Attempt {
  readonly end: WatchEnd;
  readonly error?: unknown;
  readonly resourceVersion: string;
  /** When the stream was established, if it was. */
  readonly establishedAt: number | undefined;
}

const reasons: readonly RestartReason[] = ['gone', 'error', 'closed', 'watchdog', 'timeout'];

/**
 * List + watch of one collection into a store (see the file header for guarantees). Construct
 * it (no I/O), add handlers, then `start(signal)`; it is a manager `Runnable` of the
 * `caches` group: `ready` resolves once synced.
 */
export class Watcher<T extends KubeObject> {
  readonly name: string;
  /** The cache this watcher fills; read-only. */
  readonly store: Store<T>;
  private readonly writer: StoreWriter<T>;
  private readonly options: WatcherOptions<T>;
  private readonly http: KubeHttp;
  private readonly watch: Watch;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly restarts: Counter<'resource' | 'reason'>;
  private readonly events: Counter<'resource' | 'type'>;
  private readonly backoff: Backoff;
  private readonly resetAfterMs: number;
  private readonly watchTimeoutSeconds: number;
  private readonly watchdogMs: number;
  private handlers: WatchHandler<T>[] = [];
  private running = false;
  private servedState: ServedState = 'unknown';
  private readonly settled: Promise<void>;
  private settle: () => void = () => {};

  constructor(options: WatcherOptions<T>) {
    this.options = options;
    this.name = options.resource ?? options.path;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? 20;
    this.watchdogMs = options.watchdogMs ?? 27_000;
    if (this.watchTimeoutSeconds < 1 || this.watchTimeoutSeconds >= 30) {
      throw new KubeConfigError('watchTimeoutSeconds must be in [1, 30): client-node aborts streams silent for 30 s');
    }
    this.writer = options.store ?? new StoreWriter<T>();
    this.store = this.writer.reader;
    this.clock = options.clock;
    this.logger = options.logger.child({ resource: this.name });
    this.http = new KubeHttp({ kubeConfig: options.kubeConfig, clock: options.clock, timeoutMs: options.requestTimeoutMs ?? 60_000 });
    this.watch = new Watch(options.kubeConfig);
    const b = options.backoff ?? {};
    this.resetAfterMs = b.resetAfterMs ?? 120_000;
    this.backoff = new Backoff({
      initialMs: b.initialMs ?? 800,
      maxMs: b.maxMs ?? 30_000,
      jitter: b.jitter ?? 1,
      ...(b.random ? { random: b.random } : {}),
    });
    this.restarts = counter(options.registry, {
      name: 'ferry_watch_restarts_total',
      help: 'Watch restarts by resource and reason (gone = 410 and relist, error, closed, watchdog, timeout).',
      labelNames: ['resource', 'reason'],
    });
    this.events = counter(options.registry, {
      name: 'ferry_watch_events_total',
      help: 'Changes delivered to handlers by resource and type (added, modified, deleted, resync).',
      labelNames: ['resource', 'type'],
    });
    for (const reason of reasons) this.restarts.inc({ resource: this.name, reason }, 0);
    this.settled = new Promise<void>((resolve) => {
      this.settle = resolve;
    });
  }

  /** Whether the API server serves the collection, as the last list or watch found. */
  get served(): ServedState {
    return this.servedState;
  }

  /** Adds a handler; call before `start`. Returns a function that removes it. */
  addHandler(handler: WatchHandler<T>): () => void {
    this.handlers.push(handler);
    return () => {
      this.handlers = this.handlers.filter((h) => h !== handler);
    };
  }

  /**
   * Resolves once the first list is in the store, or once the API server said it does not serve
   * the collection (then the store stays empty and unsynced until it does: see `served`).
   * Rejects only when `signal` aborts.
   */
  ready(signal: AbortSignal): Promise<void> {
    if (this.store.synced || this.servedState === 'not-served') return Promise.resolve();
    const aborted = new AbortController();
    const onAbort = (): void => {
      aborted.abort(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    return Promise.race([this.store.waitForSync(aborted.signal), this.settled]).finally(() => {
      signal.removeEventListener('abort', onAbort);
      aborted.abort();
    });
  }

  /**
   * Lists and watches until `signal` aborts, then resolves. Never rejects for server or network
   * failures (they are retried); throws if started while already running.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error(`watcher ${this.name} is already running`);
    this.running = true;
    const stopResync = this.startResync();
    let resourceVersion: string | undefined;
    // Start of the current failure-free run of the stream, for resetting the backoff.
    let healthySince: number | undefined;
    try {
      while (!signal.aborted) {
        let attempt: Attempt;
        try {
          if (resourceVersion === undefined) {
            resourceVersion = await this.relist(signal);
            healthySince = earliest(healthySince, this.clock.now());
          }
          attempt = await this.watchOnce(resourceVersion, signal);
          healthySince = earliest(healthySince, attempt.establishedAt);
        } catch (err) {
          if (stopping(signal)) break;
          if (resourceVersion === undefined && isNotServed(err)) {
            // The list said 404: nothing to watch. The store is left as it is (see the header).
            this.noteServed('not-served', err);
            healthySince = undefined;
            // Served before: most likely a moment after an API server restart, so the usual
            // backoff (quick at first); never served: a CRD someone has yet to install.
            const delay = this.store.synced ? this.backoff.next() : (this.options.notServedPollMs ?? 5_000);
            try {
              await this.clock.sleep(delay, signal);
            } catch {
              break;
            }
            continue;
          }
          attempt = { end: isGone(err) ? 'gone' : 'error', error: err, resourceVersion: resourceVersion ?? '', establishedAt: undefined };
        }
        const end = attempt.end;
        if (end === 'stopped' || stopping(signal)) break;
        if (resourceVersion !== undefined && attempt.resourceVersion !== '') resourceVersion = attempt.resourceVersion;
        if (end === 'expired') {
          this.logger.debug({ resourceVersion }, 'watch expired; resuming');
          continue;
        }

        const now = this.clock.now();
        const plan = planRestart(end, healthySince === undefined ? undefined : now - healthySince, this.resetAfterMs);
        // A watch the server answers with 404: the collection went away; a list finds out for sure.
        if (plan.relist || isNotServed(attempt.error)) resourceVersion = undefined;
        if (plan.resetBackoff) this.backoff.reset();
        healthySince = undefined;
        const delay = plan.backoff ? this.backoff.next() : 0;
        if (plan.count) this.restarts.inc({ resource: this.name, reason: end });
        const level = end === 'gone' ? 'info' : 'warn';
        this.logger[level]({ reason: end, err: attempt.error, delayMs: Math.round(delay), relist: plan.relist }, 'watch restarting');
        try {
          await this.clock.sleep(delay, signal);
        } catch {
          break;
        }
      }
    } finally {
      stopResync();
      this.running = false;
    }
  }

  /** Lists every page, replaces the store, tells handlers what changed; returns the list's resourceVersion. */
  private async relist(signal: AbortSignal): Promise<string> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion: string;
    do {
      const page = await this.http.request<ListResponse>({
        method: 'GET',
        path: this.options.path,
        query: {
          limit: this.options.pageSize ?? 500,
          continue: continueToken,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
        },
        signal,
      });
      // List items carry no apiVersion/kind; watch events do. Fill them in so handlers and the
      // store see one shape either way.
      const kind = page.kind?.endsWith('List') ? page.kind.slice(0, -'List'.length) : undefined;
      for (const item of page.items ?? []) items.push({ apiVersion: page.apiVersion, kind, ...item } as T);
      resourceVersion = page.metadata?.resourceVersion ?? '';
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken !== undefined);
    if (resourceVersion === '') {
      throw new UnavailableError(`GET ${this.options.path}: list without a resourceVersion`, { method: 'GET', path: this.options.path });
    }
    const changes = this.writer.replace(items);
    this.noteServed('served');
    this.logger.info(
      { resourceVersion, objects: items.length, added: changes.added.length, modified: changes.modified.length, deleted: changes.deleted.length },
      'listed',
    );
    for (const obj of changes.added) this.emit('added', obj);
    for (const { obj, old } of changes.modified) this.emit('modified', obj, old);
    for (const obj of changes.deleted) this.emit('deleted', obj);
    return resourceVersion;
  }

  /** One watch request, from `resourceVersion` until it ends for any reason. Never rejects. */
  private watchOnce(resourceVersion: string, signal: AbortSignal): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      const started = this.clock.now();
      let lastRv = resourceVersion;
      let settled = false;
      let establishedAt: number | undefined;
      let request: AbortController | undefined;
      let cancelWatchdog = (): void => {};

      const finish = (end: WatchEnd, error?: unknown): void => {
        if (settled) return;
        settled = true;
        cancelWatchdog();
        signal.removeEventListener('abort', onAbort);
        request?.abort();
        resolve({ end, error, resourceVersion: lastRv, establishedAt });
      };
      const armWatchdog = (): void => {
        cancelWatchdog();
        cancelWatchdog = this.clock.setTimer(() => {
          finish('watchdog');
        }, this.watchdogMs);
      };
      const onAbort = (): void => {
        finish('stopped');
      };

      const onEvent = (phase: string, obj: unknown): void => {
        if (settled) return;
        armWatchdog();
        // client-node swallows whatever this callback throws; never let anything escape.
        try {
          const rv = this.applyEvent(phase, obj);
          if (rv.kind === 'rv') lastRv = rv.value;
          else if (rv.kind === 'error') finish(rv.gone ? 'gone' : 'error', rv.error);
        } catch (err) {
          this.logger.error({ err, phase }, 'could not apply a watch event');
        }
      };

      const onDone = (err: unknown): void => {
        if (settled) return;
        if (err === null || err === undefined) {
          finish(classifyCleanClose(this.clock.now() - started, this.watchTimeoutSeconds));
          return;
        }
        finish(classifyWatchError(err), err);
      };

      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) {
        onAbort();
        return;
      }
      armWatchdog();
      this.watch
        .watch(
          this.options.path,
          {
            resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.watchTimeoutSeconds,
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
          },
          onEvent,
          onDone,
        )
        .then(
          (controller) => {
            request = controller;
            if (settled) controller.abort();
            else establishedAt = this.clock.now();
          },
          (err: unknown) => {
            onDone(err ?? new KubeConfigError('watch failed to start'));
          },
        );
    });
  }

  /** Applies one watch event to the store and handlers. */
  private applyEvent(
    phase: string,
    raw: unknown,
  ): { kind: 'rv'; value: string } | { kind: 'none' } | { kind: 'error'; gone: boolean; error: Error } {
    if (phase === 'ERROR') {
      const status = (raw ?? {}) as KubeStatus;
      const error = errorFromStatus(status.code ?? 500, status, { method: 'WATCH', path: this.options.path });
      return { kind: 'error', gone: error instanceof GoneError, error };
    }
    if (!raw || typeof raw !== 'object') return { kind: 'none' };
    const obj = raw as T;
    const rv = obj.metadata?.resourceVersion;
    switch (phase) {
      case 'BOOKMARK':
        break;
      case 'ADDED':
      case 'MODIFIED': {
        const old = this.writer.apply(obj);
        if (old?.metadata?.resourceVersion !== undefined && old.metadata.resourceVersion === rv) break;
        this.emit(old ? 'modified' : 'added', obj, old);
        break;
      }
      case 'DELETED': {
        this.writer.delete(objectKey(obj));
        this.emit('deleted', obj);
        break;
      }
      default:
        this.logger.warn({ phase }, 'unknown watch event type');
        return { kind: 'none' };
    }
    return rv ? { kind: 'rv', value: rv } : { kind: 'none' };
  }

  private noteServed(next: ServedState, err?: unknown): void {
    const previous = this.servedState;
    this.servedState = next;
    if (next !== 'unknown') this.settle();
    const hint = this.options.notServedHint;
    switch (servedTransition(previous, next)) {
      case 'error':
        this.logger.error({ err }, `${this.name} is not served by the API server (404)${hint ? `: ${hint}` : ''}`);
        break;
      case 'warn':
        this.logger.warn({ err, cached: this.store.size }, `${this.name} is no longer served by the API server (404); keeping the cached objects until it is served again${hint ? `: ${hint}` : ''}`);
        break;
      case 'info':
        this.logger.info('resource is served');
        break;
      case undefined:
        break;
    }
  }

  private emit(type: WatchEventType, obj: T, old?: T): void {
    this.events.inc({ resource: this.name, type });
    for (const handler of this.handlers) {
      try {
        handler(type, obj, old);
      } catch (err) {
        this.logger.error({ err, type, key: obj.metadata?.name }, 'watch handler threw');
      }
    }
  }

  private startResync(): () => void {
    const every = this.options.resyncMs ?? 0;
    if (every <= 0) return () => {};
    let cancel = (): void => {};
    const tick = (): void => {
      if (this.store.synced) for (const obj of this.store.list()) this.emit('resync', obj);
      cancel = this.clock.setTimer(tick, every);
    };
    cancel = this.clock.setTimer(tick, every);
    return () => {
      cancel();
    };
  }
}

/** `signal.aborted`, read through a call: TypeScript would otherwise keep it narrowed across awaits. */
function stopping(signal: AbortSignal): boolean {
  return signal.aborted;
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined ? a : Math.min(a, b);
}
