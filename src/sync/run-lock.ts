/**
 * Which replica runs a SyncSchedule's run: one KV key per SyncSchedule in the shared runs bucket
 * (`<namespace>.<name>.lock`), changed only by compare-and-set.
 *
 * The record says who holds the run (owner, run id, lease end) and which slot and manual trigger
 * were last taken. Taking a slot and marking it taken is one compare-and-set, so among any number
 * of replicas exactly one runs a given slot, and a slot is never run twice. The holder renews the
 * lease (`expiresAt`) every third of its TTL; a holder that dies (SIGKILL, a lost node) stops
 * renewing, and once the lease has passed the next slot may be taken by anyone. A renewal that
 * finds the record changed means the run was replaced or its lease was taken over: the holder
 * must stop at once (`RunLockLostError`).
 */
import type { SharedKv, Versioned } from '../nats/index.ts';

/** Compare-and-set attempts of a renewal or release that races with skips being recorded. */
const CAS_ATTEMPTS = 5;

export interface LockRecord {
  readonly owner?: string | undefined;
  readonly runId?: string | undefined;
  readonly expiresAt?: number | undefined;
  /** The latest scheduled slot taken (run or skipped), epoch ms. */
  readonly lastSlot?: number | undefined;
  /** The latest `ferry.dev/run-now` value taken. */
  readonly lastManual?: string | undefined;
}

export type Trigger = { readonly kind: 'slot'; readonly slot: number } | { readonly kind: 'manual'; readonly value: string };

export type Acquire =
  | { readonly kind: 'acquired'; readonly revision: number; readonly replaced: string | undefined }
  /** Another run holds the lock and the policy is Forbid: this trigger was marked taken (Skipped). */
  | { readonly kind: 'skipped'; readonly holder: string }
  /** Already taken (by this or another replica), or lost a race: nothing to do. */
  | { readonly kind: 'taken' };

export function isTaken(lock: LockRecord | undefined, trigger: Trigger): boolean {
  if (trigger.kind === 'slot') return lock?.lastSlot !== undefined && trigger.slot <= lock.lastSlot;
  return lock?.lastManual === trigger.value;
}

export function isHeld(lock: LockRecord | undefined, now: number): boolean {
  return lock?.owner !== undefined && (lock.expiresAt ?? 0) > now;
}

function taking(lock: LockRecord | undefined, trigger: Trigger): Pick<LockRecord, 'lastSlot' | 'lastManual'> {
  return {
    lastSlot: trigger.kind === 'slot' ? Math.max(trigger.slot, lock?.lastSlot ?? 0) : lock?.lastSlot,
    lastManual: trigger.kind === 'manual' ? trigger.value : lock?.lastManual,
  };
}

export class RunLock {
  private readonly kv: SharedKv;
  private readonly key: string;

  constructor(kv: SharedKv, keyPrefix: string) {
    this.kv = kv;
    this.key = `${keyPrefix}.lock`;
  }

  read(): Promise<Versioned<LockRecord> | undefined> {
    return this.kv.get<LockRecord>(this.key);
  }

  async acquire(o: { trigger: Trigger; owner: string; runId: string; now: number; ttlMs: number; replace: boolean }): Promise<Acquire> {
    const current = await this.read();
    const lock = current?.value;
    if (isTaken(lock, o.trigger)) return { kind: 'taken' };
    const base = { ...taking(lock, o.trigger) };
    if (isHeld(lock, o.now) && !o.replace) {
      const rev = await this.kv.compareAndSet(this.key, { ...lock, ...base }, current?.revision ?? 0);
      return rev === undefined ? { kind: 'taken' } : { kind: 'skipped', holder: lock?.owner ?? 'unknown' };
    }
    const next: LockRecord = { ...base, owner: o.owner, runId: o.runId, expiresAt: o.now + o.ttlMs };
    const rev = await this.kv.compareAndSet(this.key, next, current?.revision ?? 0);
    if (rev === undefined) return { kind: 'taken' };
    return { kind: 'acquired', revision: rev, replaced: isHeld(lock, o.now) ? lock?.runId : undefined };
  }

  /**
   * Marks a trigger taken without running it (a slot missed past the starting deadline). True when
   * this call marked it; false when it was taken already or another replica got there first.
   */
  async markTaken(trigger: Trigger): Promise<boolean> {
    const current = await this.read();
    if (isTaken(current?.value, trigger)) return false;
    return (await this.kv.compareAndSet(this.key, { ...current?.value, ...taking(current?.value, trigger) }, current?.revision ?? 0)) !== undefined;
  }

  /**
   * Extends the lease; undefined when another run holds the record (replaced or taken over): stop.
   *
   * Judged by `runId`, not by the revision the holder last wrote: a Forbid skip or an expired slot
   * recorded by any replica rewrites the record (`lastSlot`, `lastManual`) and keeps the holder,
   * so a revision check took every such skip for a takeover and killed the run it had just
   * deferred to. A lost race with such a writer is re-read and retried; if it keeps losing, this
   * throws and the caller tries again at its next renewal, well within the TTL.
   */
  async renew(runId: string, now: number, ttlMs: number): Promise<number | undefined> {
    const written = await this.kv.casLoop<LockRecord>(this.key, (current) => (current?.value.runId === runId ? { ...current.value, expiresAt: now + ttlMs } : undefined), CAS_ATTEMPTS);
    return written?.revision;
  }

  /**
   * Gives the lock up at the end of a run; a record another run holds is left alone. By `runId`
   * for the reason given at {@link renew}: with a revision check, a slot skipped during the run
   * left the lock held until its TTL ran out, so the next slot was skipped too.
   */
  async release(runId: string): Promise<void> {
    await this.kv.casLoop<LockRecord>(
      this.key,
      (current) => (current?.value.runId === runId ? { lastSlot: current.value.lastSlot, lastManual: current.value.lastManual } : undefined),
      CAS_ATTEMPTS,
    );
  }
}
