/**
 * The transform pool's waiting line: first in, first out within a key (an Integration), round
 * robin across keys. Without it, one Integration whose every evaluation runs to its time box
 * (up to `delivery.concurrency` of them queued at once) would make every other Integration's
 * transforms wait behind all of its tasks; with it, a task waits for at most one task per other
 * busy key ahead of it.
 *
 * Pure: no clock, no I/O. The pool owns deadlines and calls `remove` when one passes.
 */
export class FairQueue<T> {
  /** Keys in serving order; a key is present while it has waiting items. Map order is the rotation. */
  private readonly byKey = new Map<string, T[]>();
  private count = 0;

  /** Number of waiting items across all keys. */
  get size(): number {
    return this.count;
  }

  /** Appends `item` behind the other items of `key`. A new key joins the end of the rotation. */
  push(key: string, item: T): void {
    const line = this.byKey.get(key);
    if (line) line.push(item);
    else this.byKey.set(key, [item]);
    this.count += 1;
  }

  /**
   * Takes the oldest item of the key whose turn it is, and moves that key to the end of the
   * rotation. Undefined when nothing waits.
   */
  shift(): T | undefined {
    for (const [key, line] of this.byKey) {
      const item = line.shift();
      this.byKey.delete(key);
      if (line.length > 0) this.byKey.set(key, line);
      if (item === undefined) continue;
      this.count -= 1;
      return item;
    }
    return undefined;
  }

  /**
   * Takes the oldest item of `key` only when no other key has items waiting (then taking it
   * out of turn holds nobody back); undefined otherwise.
   */
  shiftIfOnlyKey(key: string): T | undefined {
    if (this.byKey.size !== 1) return undefined;
    const line = this.byKey.get(key);
    const item = line?.shift();
    if (!line || item === undefined) return undefined;
    if (line.length === 0) this.byKey.delete(key);
    this.count -= 1;
    return item;
  }

  /**
   * Puts an item back at the head of its key's line, and that key at the head of the rotation:
   * for an item a worker was given but lost before starting it, which must not lose its place.
   */
  returnItem(key: string, item: T): void {
    this.count += 1;
    const line = this.byKey.get(key);
    if (line) {
      line.unshift(item);
      return;
    }
    const others = [...this.byKey];
    this.byKey.clear();
    this.byKey.set(key, [item]);
    for (const [k, l] of others) this.byKey.set(k, l);
  }

  /** Removes one waiting item (its deadline passed); false when it was no longer waiting. */
  remove(key: string, item: T): boolean {
    const line = this.byKey.get(key);
    if (!line) return false;
    const index = line.indexOf(item);
    if (index < 0) return false;
    line.splice(index, 1);
    if (line.length === 0) this.byKey.delete(key);
    this.count -= 1;
    return true;
  }

  /** Removes and returns every waiting item, oldest key first. */
  drain(): T[] {
    const all = [...this.byKey.values()].flat();
    this.byKey.clear();
    this.count = 0;
    return all;
  }
}
