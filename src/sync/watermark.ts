/**
 * Where the watermark W may move during a run (DESIGN, SyncSchedule rules 1–4). Pure.
 *
 * Records are observed in read order and resolved when their outcome is final (written and
 * acknowledged, unchanged, or recorded in the failed-key index — failed records never hold W
 * back). W may advance to cursor value c only when:
 * - every observed record with a cursor ≤ c is resolved, and
 * - the group of records with cursor c is complete: a later cursor value was seen, or the read
 *   ended (a group of ties split across a page boundary is never cut in half), and
 * - the source returned records in cursor order. If it did not, W advances only when the run
 *   read everything and resolved everything (rule 3).
 * W never moves backwards and never past the run's upper bound (records beyond it are not
 * observed: they wait for the next run).
 */

interface Group {
  readonly cursor: number;
  pending: number;
}

/** A record's place in the tracker, to resolve it later. */
export interface Observed {
  readonly group: Group | undefined;
}

export class WatermarkTracker {
  private readonly groups: Group[] = [];
  private head = 0;
  private sorted = true;
  private last: number | undefined;
  private max: number | undefined;
  private unresolved = 0;

  /** Called for each record in read order; `cursor` undefined: a record without a readable cursor. */
  observe(cursor: number | undefined): Observed {
    this.unresolved++;
    if (cursor === undefined) {
      // Cannot be placed: only a complete run may then move W.
      this.sorted = false;
      return { group: undefined };
    }
    if (this.last !== undefined && cursor < this.last) this.sorted = false;
    this.max = this.max === undefined ? cursor : Math.max(this.max, cursor);
    this.last = cursor;
    const tail = this.groups[this.groups.length - 1];
    if (tail && this.groups.length > this.head && tail.cursor === cursor) {
      tail.pending++;
      return { group: tail };
    }
    const group = { cursor, pending: 1 };
    this.groups.push(group);
    return { group };
  }

  resolve(observed: Observed): void {
    this.unresolved--;
    if (observed.group) observed.group.pending--;
  }

  /** True while records arrive in cursor order. */
  get inOrder(): boolean {
    return this.sorted;
  }

  /**
   * The highest cursor W may move to now; undefined when it may not move. `readComplete`: every
   * page of this run was read.
   */
  committable(readComplete: boolean): number | undefined {
    if (!this.sorted) return readComplete && this.unresolved === 0 ? this.max : undefined;
    let best: number | undefined;
    while (this.head < this.groups.length) {
      const g = this.groups[this.head];
      if (!g || g.pending > 0) break;
      const complete = this.head < this.groups.length - 1 || readComplete;
      if (!complete) break;
      best = g.cursor;
      this.head++;
    }
    // Drop resolved groups so a long run keeps only what is still open.
    if (this.head > 1024) {
      this.groups.splice(0, this.head);
      this.head = 0;
    }
    return best;
  }
}
