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

  /** Extends the lease; undefined when the record changed (replaced or taken over): stop. */
  async renew(revision: number, runId: string, now: number, ttlMs: number): Promise<number | undefined> {
    const current = await this.read();
    if (!current || current.revision !== revision || current.value.runId !== runId) return undefined;
    return this.kv.compareAndSet(this.key, { ...current.value, expiresAt: now + ttlMs }, revision);
  }

  /** Gives the lock up at the end of a run; a record that changed meanwhile is left alone. */
  async release(revision: number, runId: string): Promise<void> {
    const current = await this.read();
    if (!current || current.revision !== revision || current.value.runId !== runId) return;
    await this.kv.compareAndSet(this.key, { lastSlot: current.value.lastSlot, lastManual: current.value.lastManual }, revision);
  }
}
