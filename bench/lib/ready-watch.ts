/**
 * Tracks when each object of one collection first satisfies a predicate (e.g. Ready=True for
 * its generation), through a Kubernetes list + watch — one stream for the whole collection, no
 * per-object polling, so the observer adds almost no load to the API server it measures.
 *
 * Guarantees: the list's resourceVersion is taken before start() resolves, so every change made
 * after start() is seen. A watch that ends (server timeout, dropped connection) resumes from the
 * last resourceVersion; a 410 Gone relists. Times are on the monotonic clock of timing.ts and are
 * those at which this process received the event.
 */
import { KubeRequestError, type RawKube } from './kube-raw.ts';
import { delay, now } from './timing.ts';

export interface WatchedObject {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string; readonly generation?: number };
  readonly status?: { readonly conditions?: readonly { readonly type: string; readonly status: string; readonly reason?: string }[] };
}

interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: WatchedObject & { readonly code?: number };
}

interface ListResponse {
  readonly metadata: { readonly resourceVersion: string };
  readonly items: readonly WatchedObject[];
}

export interface ReadyWatchOptions<T extends WatchedObject> {
  readonly raw: RawKube;
  /** Collection path, e.g. `/apis/ferry.dev/v1alpha1/namespaces/bench/integrations`. */
  readonly path: string;
  readonly isReady: (obj: T) => boolean;
  readonly log?: (message: string) => void;
}

export class ReadyWatch<T extends WatchedObject> {
  /** Object name → monotonic time it was first seen ready. */
  readonly readyAt = new Map<string, number>();
  /** Object name → a short description of its last seen Ready condition (for diagnostics). */
  readonly lastState = new Map<string, string>();
  events = 0;
  restarts = 0;
  relists = 0;
  private readonly options: ReadyWatchOptions<T>;
  private readonly stopper = new AbortController();
  private readonly waiters = new Set<() => void>();
  private loop: Promise<void> | undefined;

  constructor(options: ReadyWatchOptions<T>) {
    this.options = options;
  }

  async start(): Promise<void> {
    const rv = await this.relist();
    this.loop = this.run(rv);
  }

  /** Resolves true once `count` objects have been seen ready, false when `timeoutMs` passes first. */
  async waitForCount(count: number, timeoutMs: number): Promise<boolean> {
    const deadline = now() + timeoutMs;
    while (this.readyAt.size < count) {
      const left = deadline - now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, Math.min(left, 1000));
        function wake(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.add(wake);
      });
    }
    return true;
  }

  /** How many objects are in each last-seen state, e.g. `{ "Ready=True/Delivering": 990 }`. */
  stateCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const state of this.lastState.values()) counts[state] = (counts[state] ?? 0) + 1;
    return counts;
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }

  private observe(obj: T): void {
    const name = obj.metadata?.name;
    if (name === undefined) return;
    const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
    this.lastState.set(name, ready ? `Ready=${ready.status}/${ready.reason ?? ''}` : 'no Ready condition');
    if (!this.readyAt.has(name) && this.options.isReady(obj)) {
      this.readyAt.set(name, now());
      for (const wake of this.waiters) wake();
      this.waiters.clear();
    }
  }

  private async relist(): Promise<string> {
    this.relists++;
    const list = await this.options.raw.request<ListResponse>('GET', this.options.path);
    for (const item of list.items) this.observe(item as T);
    return list.metadata.resourceVersion;
  }

  private async run(initialRv: string): Promise<void> {
    const signal = this.stopper.signal;
    // A function, not `signal.aborted` inline: TypeScript keeps a property narrowed across awaits.
    const stopped = (): boolean => signal.aborted;
    let rv: string | undefined = initialRv;
    while (!stopped()) {
      try {
        rv ??= await this.relist();
        const query = `watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${encodeURIComponent(rv)}`;
        for await (const line of this.options.raw.lines(`${this.options.path}?${query}`, signal)) {
          const event = JSON.parse(line) as WatchEvent;
          this.events++;
          if (event.type === 'ERROR') {
            // 410 Gone: our resourceVersion is too old to resume from; anything else: start over too.
            rv = undefined;
            break;
          }
          rv = event.object.metadata?.resourceVersion ?? rv;
          if (event.type === 'ADDED' || event.type === 'MODIFIED') this.observe(event.object as T);
        }
      } catch (err) {
        if (stopped()) return;
        if (err instanceof KubeRequestError && err.status === 410) rv = undefined;
        this.options.log?.(`watch of ${this.options.path} failed, resuming: ${err instanceof Error ? err.message : String(err)}`);
        await delay(200, signal).catch(() => undefined);
      }
      if (!stopped()) this.restarts++;
    }
  }
}
