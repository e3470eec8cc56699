/**
 * The cache reconcilers read from, filled by one watcher (modelled on kube-rs's
 * `reflector::store`): a {@link StoreWriter} that only the watcher holds, and a read-only
 * {@link Store} view handed to everyone else.
 *
 * Guarantees: a key maps to the latest version the watcher has seen; `synced` turns true after
 * the first complete list and stays true (a relist swaps the contents in one step, so readers
 * never see a half-filled cache). Objects are shared, not copied: readers must not mutate them.
 */
import { objectKey, type KubeObject } from './object.ts';

/** Returns the index values of an object (e.g. the names of the Secrets it references). */
export type IndexFunc<T> = (obj: T) => readonly string[];

/** Read-only view of a cache. */
export interface Store<T extends KubeObject> {
  /** The object with this `namespace/name` key (or `name` if cluster-scoped). */
  get(key: string): T | undefined;
  /** Every cached object, in no particular order. */
  list(): T[];
  keys(): string[];
  /** Objects whose index function returned `value`; throws a TypeError for an unknown index. */
  byIndex(index: string, value: string): T[];
  readonly size: number;
  /** True once the first full list has been stored. */
  readonly synced: boolean;
  /**
   * Resolves when the store is synced (at once if it already is). Rejects with the signal's
   * reason if `signal` aborts first. Never rejects otherwise: a watcher that cannot list keeps
   * retrying, so this waits as long as the caller lets it.
   */
  waitForSync(signal: AbortSignal): Promise<void>;
}

export interface StoreOptions<T> {
  readonly indexers?: Readonly<Record<string, IndexFunc<T>>>;
}

/** The writing half of a store. Held by exactly one watcher. */
export class StoreWriter<T extends KubeObject> {
  private objects = new Map<string, T>();
  private indices = new Map<string, Map<string, Set<string>>>();
  private readonly indexers: Readonly<Record<string, IndexFunc<T>>>;
  private isSynced = false;
  private syncWaiters: (() => void)[] = [];
  /** The read-only view of this store, for reconcilers. */
  readonly reader: Store<T>;

  constructor(options: StoreOptions<T> = {}) {
    this.indexers = options.indexers ?? {};
    for (const name of Object.keys(this.indexers)) this.indices.set(name, new Map());
    this.reader = this.makeReader();
  }

  /** Inserts or replaces an object; returns the previous version. */
  apply(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.objects.get(key);
    if (old) this.unindex(key, old);
    this.objects.set(key, obj);
    this.index(key, obj);
    return old;
  }

  /** Removes an object by key; returns what was stored. */
  delete(key: string): T | undefined {
    const old = this.objects.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.objects.delete(key);
    return old;
  }

  /**
   * Replaces the whole content with a fresh list, marks the store synced and returns what
   * changed, so the watcher can tell handlers what a relist discovered.
   */
  replace(objs: readonly T[]): {
    added: T[];
    modified: { obj: T; old: T }[];
    deleted: T[];
  } {
    const previous = this.objects;
    this.objects = new Map();
    for (const name of this.indices.keys()) this.indices.set(name, new Map());
    const added: T[] = [];
    const modified: { obj: T; old: T }[] = [];
    for (const obj of objs) {
      const key = objectKey(obj);
      this.objects.set(key, obj);
      this.index(key, obj);
      const old = previous.get(key);
      if (!old) added.push(obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) modified.push({ obj, old });
    }
    const deleted = [...previous].filter(([key]) => !this.objects.has(key)).map(([, obj]) => obj);
    this.markSynced();
    return { added, modified, deleted };
  }

  private markSynced(): void {
    if (this.isSynced) return;
    this.isSynced = true;
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const wake of waiters) wake();
  }

  private index(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.indexers)) {
      const index = this.indices.get(name);
      if (!index) continue;
      for (const value of fn(obj)) {
        let keys = index.get(value);
        if (!keys) index.set(value, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.indexers)) {
      const index = this.indices.get(name);
      if (!index) continue;
      for (const value of fn(obj)) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
    }
  }

  private makeReader(): Store<T> {
    // Closures over `this` rather than exposing the writer: a reader cannot reach apply/delete.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      get: (key) => self.objects.get(key),
      list: () => [...self.objects.values()],
      keys: () => [...self.objects.keys()],
      byIndex(index, value) {
        const idx = self.indices.get(index);
        if (!idx) throw new TypeError(`unknown index ${index}`);
        const out: T[] = [];
        for (const key of idx.get(value) ?? []) {
          const obj = self.objects.get(key);
          if (obj) out.push(obj);
        }
        return out;
      },
      get size() {
        return self.objects.size;
      },
      get synced() {
        return self.isSynced;
      },
      waitForSync: (signal) => self.waitForSync(signal),
    };
  }

  private waitForSync(signal: AbortSignal): Promise<void> {
    if (this.isSynced) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(toReason(signal));
        return;
      }
      const onAbort = (): void => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== wake);
        reject(toReason(signal));
      };
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.syncWaiters.push(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function toReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal.reason });
}
