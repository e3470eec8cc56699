/**
 * A map that keeps at most `capacity` entries and forgets the least recently used one first.
 * The transform worker keeps its compiled JSONata expressions in one, keyed by source: an
 * expression is compiled once per worker, and expressions of deleted or changed Integrations
 * age out instead of piling up for the life of the process.
 *
 * Written by hand because it is a dozen lines over `Map`'s insertion order; a library would add
 * more than it saves. Pure.
 */
export class LruCache<V> {
  private readonly entries = new Map<string, V>();
  private readonly capacity: number;

  /** @throws RangeError when `capacity` is not an integer ≥ 1. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`LRU capacity must be an integer ≥ 1, got ${capacity}`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The value for `key`, made with `make` on a miss. A hit or a new entry becomes the most
   * recently used; when the cache is full, the least recently used entry is dropped. If `make`
   * throws, nothing is stored and the error propagates.
   */
  getOrCreate(key: string, make: () => V): V {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      // Re-inserting moves the key to the end of Map's iteration order: most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const value = make();
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, value);
    return value;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }
}
