/**
 * One collection watched in a chosen set of namespaces: a {@link Watcher} per namespace behind
 * the surface the composition root uses from a single watcher (`store`, `served`, `addHandler`,
 * `start`, `ready`). With `--watch-namespaces` the operator needs only namespaced list+watch
 * permissions (a Role per namespace) instead of a cluster-wide one (a ClusterRole).
 *
 * Guarantees:
 * - `store` is a read-only merge of the members' stores: a key is looked up in the store of its
 *   namespace; `list`, `keys` and `byIndex` concatenate; `synced` once every member is.
 * - `ready` resolves once every member is ready (synced, or told its collection is not served),
 *   so one slow namespace holds back readiness as one slow cluster-wide list would.
 * - `served` is `not-served` as soon as one member's collection is not served (a missing CRD is
 *   missing in every namespace), `served` once all are, else `unknown`.
 * - Handlers are added to every member; a change in any namespace reaches them once.
 *
 * Caveats: each member lists and watches on its own connection, so N namespaces cost N watches
 * per kind; meant for a handful of namespaces, not hundreds. Members share the group's name as
 * their `resource` metric label (bounded cardinality), so `ferry_watch_*` sum over namespaces;
 * their log lines carry the namespace.
 */
import type { KubeObject } from './object.ts';
import type { Store } from './store.ts';
import type { WatchHandler } from './watcher.ts';
import type { ServedState } from './watch-policy.ts';

/** What the operator reads from a watched collection, whether one watcher or a group feeds it. */
export interface WatchSource<T extends KubeObject> {
  /** The runnable's name and log field, e.g. `secrets`. */
  readonly name: string;
  readonly store: Store<T>;
  readonly served: ServedState;
  addHandler(handler: WatchHandler<T>): () => void;
  start(signal: AbortSignal): Promise<void>;
  ready(signal: AbortSignal): Promise<void>;
}

/**
 * The members' stores as one store. Keys are `namespace/name`, so `get` asks only the store of
 * the key's namespace; stores are looked up by namespace in `byNamespace`.
 */
export function mergeStores<T extends KubeObject>(byNamespace: ReadonlyMap<string, Store<T>>): Store<T> {
  const stores = [...byNamespace.values()];
  return {
    get(key) {
      const slash = key.indexOf('/');
      // A cluster-scoped key (no namespace) is never in a namespaced watch.
      return slash < 0 ? undefined : byNamespace.get(key.slice(0, slash))?.get(key);
    },
    list: () => stores.flatMap((s) => s.list()),
    keys: () => stores.flatMap((s) => s.keys()),
    byIndex: (index, value) => stores.flatMap((s) => s.byIndex(index, value)),
    get size() {
      return stores.reduce((n, s) => n + s.size, 0);
    },
    get synced() {
      return stores.every((s) => s.synced);
    },
    waitForSync: async (signal) => {
      await Promise.all(stores.map((s) => s.waitForSync(signal)));
    },
  };
}

/** One collection watched per namespace; see the file header. Construct (no I/O), add handlers, then `start`. */
export class WatcherGroup<T extends KubeObject> implements WatchSource<T> {
  readonly name: string;
  readonly store: Store<T>;
  private readonly members: readonly WatchSource<T>[];

  /**
   * `byNamespace` maps each namespace to the source watching only it (a Watcher of a namespaced
   * path). Throws a TypeError when it is empty: a group watching nothing is a wiring bug, and
   * would report itself ready with nothing cached.
   */
  constructor(name: string, byNamespace: ReadonlyMap<string, WatchSource<T>>) {
    if (byNamespace.size === 0) throw new TypeError(`watcher group ${name} has no namespaces`);
    this.name = name;
    this.members = [...byNamespace.values()];
    this.store = mergeStores(new Map([...byNamespace].map(([ns, m]) => [ns, m.store])));
  }

  get served(): ServedState {
    const states = this.members.map((m) => m.served);
    if (states.includes('not-served')) return 'not-served';
    return states.every((s) => s === 'served') ? 'served' : 'unknown';
  }

  addHandler(handler: WatchHandler<T>): () => void {
    const removers = this.members.map((m) => m.addHandler(handler));
    return () => {
      for (const remove of removers) remove();
    };
  }

  /** Runs every member until `signal` aborts; rejects if one does (a Watcher only does when started twice). */
  async start(signal: AbortSignal): Promise<void> {
    await Promise.all(this.members.map((m) => m.start(signal)));
  }

  async ready(signal: AbortSignal): Promise<void> {
    await Promise.all(this.members.map((m) => m.ready(signal)));
  }
}
