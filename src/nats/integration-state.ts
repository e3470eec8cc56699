/**
 * What the replicas of one Integration share through the INTEGRATION_STATE_BUCKET, and where.
 * The runtime (every replica) writes it; the controller (the leader) reads it into status. Both
 * import the shapes from here, so writer and reader cannot drift apart.
 */
import { integrationStateKeyPrefix, type ObjectRef } from './names.ts';

/** Circuit breaker state, as the replica that last changed it saw it (times in ms since the epoch). */
export interface SharedCircuit {
  readonly state: 'Closed' | 'Open' | 'HalfOpen';
  /** Why it last changed: `reset` when new credentials closed it at once. */
  readonly reason?: string | undefined;
  readonly since: number;
  readonly consecutiveFailures: number;
  readonly openUntil: number | undefined;
  /** The last failed attempt before the change (e.g. `HTTP 503`), for the Warning that names it. */
  readonly lastFailure?: string | undefined;
}

/** The lowered shared rate after a 429 (see delivery's ThrottleController). */
export interface SharedThrottle {
  readonly perSecond: number;
  readonly limitedUntil: number;
  readonly decreasedAt: number;
}

export interface SharedLastError {
  readonly time: number;
  readonly reason: string;
  readonly httpStatus?: number | undefined;
  readonly message: string;
}

/** Counters added up across replicas (compare-and-set increments). */
export interface SharedStats {
  readonly delivered: number;
  readonly retried: number;
  readonly fallback: number;
  readonly invalid: number;
  readonly throttled: number;
  /**
   * Events whose outcome became final within / outside spec.sla.deliverWithin (a parked event is
   * late). Counted only while an SLA is set; absent until the first one.
   */
  readonly slaMet?: number | undefined;
  readonly slaLate?: number | undefined;
  readonly lastDeliveredTime?: number | undefined;
  readonly lastError?: SharedLastError | undefined;
  /** Last time a 2xx broke responseSchema. */
  readonly lastContractDrift?: number | undefined;
  /** Last 401/403 from the target: its credentials were refused. */
  readonly lastUnauthorized?: { readonly time: number; readonly httpStatus: number } | undefined;
  /** Last time an event was stored in the fallback stream. */
  readonly lastParkedTime?: number | undefined;
  /** Last failed fallback publish: the event stayed in its source. */
  readonly lastFallbackFailure?: { readonly time: number; readonly message: string } | undefined;
  /**
   * Per writer (one pipeline instance), its last flush that was applied and when: a flush retried
   * after its reply was lost (applied, yet reported as failed) is recognised and not added twice.
   */
  readonly writers?: Readonly<Record<string, { readonly seq: number; readonly at: number }>> | undefined;
}

/** One flush of a writer's counters: the writer's id and its flush number, from 1 up. */
export interface StatsFlush {
  readonly writer: string;
  readonly seq: number;
  readonly delta: SharedStats;
}

/** A writer not heard from for this long is forgotten (its flushes were long applied or dropped). */
export const STATS_WRITER_TTL_MS = 60 * 60_000;

export const EMPTY_STATS: SharedStats = { delivered: 0, retried: 0, fallback: 0, invalid: 0, throttled: 0 };

export function circuitKey(ref: ObjectRef): string {
  return `${integrationStateKeyPrefix(ref)}.circuit`;
}

export function throttleKey(ref: ObjectRef): string {
  return `${integrationStateKeyPrefix(ref)}.throttle`;
}

/**
 * The last generation the leader found valid, with the ConfigMap values it read, so that any
 * replica — a new one included — can run it while a later generation is Stalled. Secrets are
 * never stored here: they are read from the cluster, as for any generation.
 */
export interface LastGoodGeneration {
  readonly uid: string;
  readonly generation: number;
  readonly spec: unknown;
  /** ConfigMap name → the keys the generation read. */
  readonly configMaps: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export function lastGoodKey(ref: ObjectRef): string {
  return `${integrationStateKeyPrefix(ref)}.lastgood`;
}

export function statsKey(ref: ObjectRef): string {
  return `${integrationStateKeyPrefix(ref)}.stats`;
}

/**
 * Applies `flush` to the shared counters exactly once: a flush whose number the writer already
 * recorded is not added again (the stored value is returned as it is). Writers idle for
 * {@link STATS_WRITER_TTL_MS} are pruned.
 */
export function applyStatsFlush(current: SharedStats | undefined, flush: StatsFlush, now: number): SharedStats {
  const seen = current?.writers?.[flush.writer];
  if (current && seen && seen.seq >= flush.seq) return current;
  const writers: Record<string, { readonly seq: number; readonly at: number }> = {};
  for (const [id, w] of Object.entries(current?.writers ?? {})) if (w.at > now - STATS_WRITER_TTL_MS) writers[id] = w;
  writers[flush.writer] = { seq: flush.seq, at: now };
  return { ...addStats(current, flush.delta), writers };
}

/** Adds a replica's delta to the shared counters; later times and errors win. */
export function addStats(current: SharedStats | undefined, delta: SharedStats): SharedStats {
  const c = current ?? EMPTY_STATS;
  const later = <T extends { time: number } | number>(a: T | undefined, b: T | undefined, time: (x: T) => number): T | undefined =>
    a === undefined ? b : b === undefined ? a : time(b) >= time(a) ? b : a;
  return {
    delivered: c.delivered + delta.delivered,
    retried: c.retried + delta.retried,
    fallback: c.fallback + delta.fallback,
    invalid: c.invalid + delta.invalid,
    throttled: c.throttled + delta.throttled,
    ...(c.slaMet === undefined && c.slaLate === undefined && delta.slaMet === undefined && delta.slaLate === undefined
      ? {}
      : { slaMet: (c.slaMet ?? 0) + (delta.slaMet ?? 0), slaLate: (c.slaLate ?? 0) + (delta.slaLate ?? 0) }),
    lastDeliveredTime: later(c.lastDeliveredTime, delta.lastDeliveredTime, (x) => x),
    lastError: later(c.lastError, delta.lastError, (x) => x.time),
    lastContractDrift: later(c.lastContractDrift, delta.lastContractDrift, (x) => x),
    lastUnauthorized: later(c.lastUnauthorized, delta.lastUnauthorized, (x) => x.time),
    lastParkedTime: later(c.lastParkedTime, delta.lastParkedTime, (x) => x),
    lastFallbackFailure: later(c.lastFallbackFailure, delta.lastFallbackFailure, (x) => x.time),
  };
}

/** How a redrive ended (or `Running`); the words of `status.lastRedrive.result`. */
export type RedriveResult = 'Running' | 'Succeeded' | 'Partial' | 'Failed' | 'Invalid';

/**
 * One Integration's redrive: its lock, its progress and its outcome, in one key changed only by
 * compare-and-set. The replica that takes a request writes it; the leader reads it into
 * `status.lastRedrive`. Times in ms since the epoch.
 */
export interface SharedRedrive {
  /** The `ferry.dev/redrive` value this record answers. */
  readonly request: string;
  readonly result: RedriveResult;
  /** The filter the request was taken with (the annotations may change while it runs). */
  readonly filter?: unknown;
  /** Replica identity holding the run, and this run's id (a takeover gets a new one). */
  readonly holder?: string | undefined;
  readonly runId?: string | undefined;
  /** The holder's lease: renewed while it works; a Running record past it may be taken over. */
  readonly expiresAt?: number | undefined;
  readonly startedAt?: number | undefined;
  /**
   * The fallback stream's last sequence when the redrive started: later messages (re-parked by
   * this redrive, or parked meanwhile) are never selected by it.
   */
  readonly upToSequence?: number | undefined;
  /** The first sequence not yet done. */
  readonly nextSequence?: number | undefined;
  /**
   * A message whose outcome is recorded here but whose removal from the fallback stream may not
   * have happened (the holder died in between): whoever continues deletes it first.
   */
  readonly pendingDelete?: number | undefined;
  /**
   * A message whose failed-again copy is being published: a holder that dies before recording the
   * outcome may have parked the copy already, and whoever continues must not deliver the original
   * as well (the copy would stay parked for an event that was delivered).
   */
  readonly reparking?: number | undefined;
  readonly selected: number;
  readonly delivered: number;
  readonly failedAgain: number;
  readonly completedAt?: number | undefined;
  readonly message?: string | undefined;
}

export function redriveKey(ref: ObjectRef): string {
  return `${integrationStateKeyPrefix(ref)}.redrive`;
}
