/**
 * What this reconciler last wrote to each object's status, for as long as the watch cache has not
 * caught up with the write.
 *
 * A reconcile reads the object from the cache, and the cache can lag behind the status the
 * previous reconcile of the same key wrote: a requeue (the runtime view changed, a resync) may
 * run before the watch event of that write arrived. Reasoning from the stale status then repeats
 * what was already done — "turned Ready" is announced twice (a second log line and Normal Event),
 * a Stalled Warning is sent again, the same status is written again. Remembering the write,
 * together with the cached version it was based on, tells the two cases apart without comparing
 * resourceVersions (which are opaque): while the cache still holds exactly that version, the
 * write is the newer truth; once the cache holds any other version, the cache is.
 *
 * Pure and in memory: a new leader starts empty and trusts its cache, as before.
 */
import type { FerryObject, FerryObjectStatus } from './ferry-object.ts';

interface Entry {
  readonly uid: string | undefined;
  /** The resourceVersion of the cached object the write was based on. */
  readonly basedOn: string | undefined;
  readonly status: FerryObjectStatus;
}

export class WrittenStatus {
  private readonly entries = new Map<string, Entry>();

  /**
   * The status to reason from for `obj` (the cached object of `key`): what was last written if
   * the cache has not seen that write yet, else the cached status.
   */
  current(key: string, obj: FerryObject): FerryObjectStatus | undefined {
    const entry = this.entries.get(key);
    if (!entry) return obj.status;
    if (entry.uid === obj.metadata?.uid && entry.basedOn === obj.metadata?.resourceVersion) return entry.status;
    // The cache moved on (or the object was re-created): it knows better from now on.
    this.entries.delete(key);
    return obj.status;
  }

  /**
   * Records that `patch` was merge-patched onto the status of `obj` as cached (a `null` field
   * removes it, as in a JSON merge patch).
   */
  record(key: string, obj: FerryObject, patch: FerryObjectStatus): void {
    const merged = new Map(Object.entries(this.current(key, obj) ?? {}));
    for (const [field, value] of Object.entries(patch)) {
      if (value === null) merged.delete(field);
      else if (value !== undefined) merged.set(field, value);
    }
    this.entries.set(key, { uid: obj.metadata?.uid, basedOn: obj.metadata?.resourceVersion, status: Object.fromEntries(merged) });
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}
