/**
 * The leader's view of what the runtime replicas report through JetStream KV (counters, circuit,
 * throttle) and of each fallback stream's size, turned into status fields and the Degraded
 * condition.
 *
 * The poller never writes status itself: it stores the view and enqueues the Integration, so the
 * reconciler stays the single writer of each object's status (the work queue runs one reconcile
 * per key at a time) and no status write can undo another.
 */
import { findSecretRefs, formatKubeTime, Reason } from '../api/index.ts';
import type { EventRecorder, Store, WorkQueue } from '../kube/index.ts';
import {
  FerryNatsError,
  INTEGRATION_STATE_BUCKET,
  KvWatchStalledError,
  fallbackStreamName,
  integrationStateKeyPrefix,
  type JetStreamResources,
  type SharedCircuit,
  type SharedKv,
  type SharedRedrive,
  type SharedStats,
  type SharedThrottle,
} from '../nats/index.ts';
import { untilAborted, type Clock, type Logger } from '../observability/index.ts';
import { EscalationLimiter, fallbackWarning } from './escalation.ts';
import { circuitOpenMessage, fallbackGrowingMessage } from './escalation-messages.ts';
import type { FerryObject } from './ferry-object.ts';
import { SlaTracker, type SlaView } from './sla-tracker.ts';
import { slaVerdict } from './sla-window.ts';

export type { SlaView } from './sla-tracker.ts';

export interface RuntimeView {
  readonly stats?: SharedStats | undefined;
  readonly circuit?: SharedCircuit | undefined;
  readonly throttle?: SharedThrottle | undefined;
  readonly fallbackPending?: number | undefined;
  /** The last redrive of the fallback stream (its record in the shared bucket). */
  readonly redrive?: SharedRedrive | undefined;
  /** Part of Ferry's JetStream state that cannot be served now (its fallback stream, the shared KV), and why. */
  readonly unavailable?: string | undefined;
  /** The SLA figures over the window, when spec.sla is set. */
  readonly sla?: SlaView | undefined;
}

/** How often the leader checks that the shared state can be served. */
const SHARED_PROBE_MS = 2_000;

/** How often the leader samples the SLA counters and looks at the oldest pending event. */
const SLA_TICK_MS = 1_000;

/** A contract failure this recent keeps Degraded=True (ContractDrift). */
export const CONTRACT_DRIFT_WINDOW_MS = 15 * 60_000;

export interface Degradation {
  readonly status: 'True' | 'False';
  readonly reason: Reason;
  readonly message: string;
}

/** The Secrets an Integration's target authenticates with, as `Secret "x" key "y" (field)`, for messages. */
export function targetCredentials(spec: unknown): string {
  const refs = findSecretRefs(spec).filter((r) => r.field.startsWith('spec.target.auth'));
  if (refs.length === 0) return 'spec.target.auth is not set: the target may require credentials';
  return refs.map((r) => `Secret ${JSON.stringify(r.name)} key ${JSON.stringify(r.key)} (${r.field})`).join(', ');
}

function unauthorizedMessage(u: NonNullable<SharedStats['lastUnauthorized']>, spec: unknown): string {
  return `the target answered ${u.httpStatus} at ${formatKubeTime(u.time)}: it refuses the credentials from ${targetCredentials(spec)}; events wait in the source stream (nothing is parked) and delivery resumes as soon as the Secret is updated`;
}

function fallbackFailureMessage(f: NonNullable<SharedStats['lastFallbackFailure']>): string {
  return `events that must be parked stay in the source stream: the fallback stream did not take one at ${formatKubeTime(f.time)}: ${f.message}`;
}

/** True while the target's latest answer to our credentials was 401/403 (no delivery since). */
function unauthorizedNow(stats: SharedStats | undefined): boolean {
  const u = stats?.lastUnauthorized;
  return u !== undefined && (stats?.lastDeliveredTime === undefined || u.time > stats.lastDeliveredTime);
}

/** True while the latest fallback publish failed (nothing parked since). */
function fallbackFailingNow(stats: SharedStats | undefined): boolean {
  const f = stats?.lastFallbackFailure;
  return f !== undefined && (stats?.lastParkedTime === undefined || f.time > stats.lastParkedTime);
}

/**
 * Degraded, from the runtime view, most specific cause first: refused credentials (whatever the
 * circuit says, that is why it is open), an open circuit, a fallback stream that does not take
 * parked events, then recent contract drift. `spec` names the Secrets in the message.
 */
export function degradation(view: RuntimeView | undefined, now: number, spec?: unknown): Degradation {
  if (view?.unavailable !== undefined) {
    return {
      status: 'True',
      reason: Reason.JetStreamUnavailable,
      message: `JetStream state unavailable: ${view.unavailable}; delivery continues where it needs nothing from it, events that must be parked wait in their source stream`,
    };
  }
  const stats = view?.stats;
  if (unauthorizedNow(stats) && stats?.lastUnauthorized) {
    return { status: 'True', reason: Reason.TargetUnauthorized, message: unauthorizedMessage(stats.lastUnauthorized, spec) };
  }
  const c = view?.circuit;
  if (c && c.state !== 'Closed') {
    const until = c.openUntil === undefined ? '' : `; next probe after ${formatKubeTime(c.openUntil)}`;
    return { status: 'True', reason: Reason.CircuitOpen, message: `circuit ${c.state} after ${c.consecutiveFailures} failures${until}: consumption paused` };
  }
  if (fallbackFailingNow(stats) && stats?.lastFallbackFailure) {
    return { status: 'True', reason: Reason.FallbackUnavailable, message: fallbackFailureMessage(stats.lastFallbackFailure) };
  }
  const drift = view?.stats?.lastContractDrift;
  if (drift !== undefined && now - drift < CONTRACT_DRIFT_WINDOW_MS) {
    const err = view?.stats?.lastError;
    return {
      status: 'True',
      reason: Reason.ContractDrift,
      message: `a 2xx response broke spec.target.responseSchema at ${formatKubeTime(drift)}${err?.reason === 'contract' ? `: ${err.message}` : ''}`,
    };
  }
  const sla = view?.sla;
  const verdict = sla ? slaVerdict(sla, sla.oldestPendingMs, sla, now) : undefined;
  if (sla && verdict?.missed) {
    return { status: 'True', reason: Reason.SlaMissed, message: slaMissedMessage(sla, verdict.why ?? '') };
  }
  return { status: 'False', reason: Reason.Healthy, message: 'no degradation observed' };
}

function slaMissedMessage(sla: SlaView, why: string): string {
  return `SLA missed over the last ${sla.window}: ${why}; look at the circuit, the target's response times (ferry_delivery_duration_seconds) and throttling, or raise spec.delivery.concurrency`;
}

/** How long after a throttle ends status still shows it. */
const THROTTLE_SHOWN_MS = 60_000;

/**
 * In how many ms status would change with nothing but time passing (a contract drift leaving its
 * window, a throttle ending), or undefined when it would not: the reconcile looks again then,
 * instead of polling every Integration. Every other change arrives as a new view. Pure.
 */
export function msUntilTimedChange(view: RuntimeView | undefined, now: number): number | undefined {
  const ends = [];
  const drift = view?.stats?.lastContractDrift;
  if (drift !== undefined) ends.push(drift + CONTRACT_DRIFT_WINDOW_MS);
  const t = view?.throttle;
  if (t) ends.push(t.limitedUntil + THROTTLE_SHOWN_MS);
  const next = Math.min(...ends.filter((at) => at > now));
  return Number.isFinite(next) ? next - now : undefined;
}

/** The status fields the view contributes (times as RFC 3339). */
export function runtimeStatusFields(view: RuntimeView | undefined, now: number): Record<string, unknown> {
  if (!view) return {};
  const out: Record<string, unknown> = {};
  if (view.fallbackPending !== undefined) out.fallbackPending = view.fallbackPending;
  const s = view.stats;
  if (s) {
    out.stats = {
      delivered: s.delivered,
      retried: s.retried,
      fallback: s.fallback,
      invalid: s.invalid,
      ...(s.lastDeliveredTime === undefined ? {} : { lastDeliveredTime: formatKubeTime(s.lastDeliveredTime) }),
      ...(s.lastError === undefined
        ? {}
        : {
            lastError: {
              time: formatKubeTime(s.lastError.time),
              reason: s.lastError.reason,
              ...(s.lastError.httpStatus === undefined ? {} : { httpStatus: s.lastError.httpStatus }),
              message: s.lastError.message.slice(0, 1024),
            },
          }),
    };
  }
  const c = view.circuit;
  if (c) {
    out.circuit = {
      state: c.state,
      since: formatKubeTime(c.since),
      consecutiveFailures: c.consecutiveFailures,
      ...(c.openUntil === undefined || c.state === 'Closed' ? {} : { openUntil: formatKubeTime(c.openUntil) }),
    };
  }
  const sla = view.sla;
  if (sla) {
    // null removes a time that no longer applies (status is written with a merge patch).
    out.sla = { window: sla.window, total: sla.total, late: sla.late, oldestPendingTime: sla.oldestPendingMs === undefined ? null : formatKubeTime(sla.oldestPendingMs) };
  }
  const t = view.throttle;
  if (t && t.limitedUntil > now - THROTTLE_SHOWN_MS) {
    out.throttle = { limitedUntil: formatKubeTime(t.limitedUntil), ...(t.perSecond > 0 ? { perSecond: Math.round(t.perSecond * 1000) / 1000 } : {}) };
  }
  if (view.redrive) out.lastRedrive = lastRedriveStatus(view.redrive);
  return out;
}

/** `status.lastRedrive` from the redrive's shared record (lease and progress internals left out). */
export function lastRedriveStatus(r: SharedRedrive): Record<string, unknown> {
  return {
    request: r.request.slice(0, 256),
    result: r.result,
    ...(r.startedAt === undefined ? {} : { startedAt: formatKubeTime(r.startedAt) }),
    ...(r.completedAt === undefined ? {} : { completedAt: formatKubeTime(r.completedAt) }),
    selected: r.selected,
    delivered: r.delivered,
    failedAgain: r.failedAgain,
    ...(r.message === undefined ? {} : { message: r.message.slice(0, 1024) }),
  };
}

/** The Event that says a redrive ended, with its counts and what to do next. */
export function redriveEndedEvent(r: SharedRedrive): { type: 'Normal' | 'Warning'; reason: Reason; note: string } | undefined {
  const what = `redrive ${JSON.stringify(r.request)}`;
  switch (r.result) {
    case 'Running':
      return undefined;
    case 'Succeeded':
      return { type: 'Normal', reason: Reason.RedriveSucceeded, note: `${what} succeeded: ${r.message ?? ''}` };
    case 'Partial':
      return {
        type: 'Warning',
        reason: Reason.RedrivePartial,
        note: `${what}: ${r.delivered} delivered, ${r.failedAgain} failed again and stay parked with the new error (Ferry-Error); fix the cause and redrive again, e.g. with ferry.dev/redrive-reasons`,
      };
    case 'Failed':
      return { type: 'Warning', reason: Reason.RedriveFailed, note: `${what} failed: ${r.message ?? ''}` };
    case 'Invalid':
      return { type: 'Warning', reason: Reason.RedriveInvalid, note: `${what} not run: ${r.message ?? ''}; correct the annotation and set ferry.dev/redrive to a new value` };
  }
}

export interface RuntimeViewPollerDeps {
  readonly integrations: Store<FerryObject>;
  readonly queue: WorkQueue;
  readonly state: SharedKv;
  readonly jetstream: JetStreamResources;
  readonly events: EventRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often fallback streams are counted when nothing says they changed (safety net). */
  readonly fallbackRecountMs?: number;
  /** Least time between two Warning Events of one reason about one Integration (default 10 min). */
  readonly escalationIntervalMs?: number;
}

interface Raw {
  /** The object this view belongs to: a re-created Integration (new uid) starts afresh. */
  uid: string | undefined;
  stats?: SharedStats | undefined;
  circuit?: SharedCircuit | undefined;
  throttle?: SharedThrottle | undefined;
  redrive?: SharedRedrive | undefined;
  fallbackPending?: number | undefined;
  /** Why the fallback stream could not be read at the last try. */
  fallbackError?: string | undefined;
  fallbackCountedAt: number;
  recount: boolean;
  /** The fallback size last warned about (see fallbackWarning); undefined before the first look. */
  fallbackWarned?: number | undefined;
  fallbackLooked?: boolean;
  sla?: SlaView | undefined;
}

/**
 * Leader-only: keeps the latest runtime view per Integration. One KV watch on the shared bucket
 * delivers every change of counters, circuit and throttle as it happens (no polling of N keys);
 * a fallback stream is counted when its Integration's `fallback` counter moved, and otherwise
 * once per `fallbackRecountMs` (retention expiry, a manual purge).
 */
export class RuntimeViewPoller {
  readonly name = 'runtime status';
  private readonly deps: RuntimeViewPollerDeps;
  private readonly views = new Map<string, RuntimeView>();
  private readonly raw = new Map<string, Raw>();
  private readonly byPrefix = new Map<string, string>();
  private readonly log: Logger;
  /** Why the shared state cannot be served, while it cannot. */
  private sharedError: string | undefined;
  /** Kept across terms: a leader that changes hands must not repeat every Warning at once. */
  private readonly escalations: EscalationLimiter;
  private readonly sla: SlaTracker;

  constructor(deps: RuntimeViewPollerDeps) {
    this.deps = deps;
    this.log = deps.logger.child({ component: 'runtime-status' });
    this.escalations = new EscalationLimiter(deps.escalationIntervalMs);
    this.sla = new SlaTracker({ jetstream: deps.jetstream, clock: deps.clock, logger: this.log });
  }

  /** The latest view of the object now in the store (never one of a deleted namesake). */
  view(key: string): RuntimeView | undefined {
    const r = this.raw.get(key);
    if (!r || r.uid !== this.deps.integrations.get(key)?.metadata?.uid) return undefined;
    return this.views.get(key);
  }

  /**
   * Runs for one leader term; it may be started again in a later term. Each term starts from
   * nothing: views kept from an earlier term may be stale, and the KV watch replays the current
   * values anyway.
   */
  async start(signal: AbortSignal): Promise<void> {
    this.views.clear();
    this.raw.clear();
    this.byPrefix.clear();
    this.sharedError = undefined;
    this.sla.clear();
    await Promise.all([this.watchLoop(signal), this.fallbackLoop(signal), this.sharedStateLoop(signal), this.slaLoop(signal)]);
  }

  /**
   * Every two seconds, whether the shared state (the KV bucket every replica writes counters,
   * circuit and throttle to) can be served. When it cannot — no quorum, no leader — every
   * Integration says so in status at once, instead of at its next resync.
   */
  private async sharedStateLoop(signal: AbortSignal): Promise<void> {
    const aborted = (): boolean => signal.aborted;
    while (!aborted()) {
      let error: string | undefined;
      try {
        const probed = await untilAborted(this.deps.jetstream.streamMessages(`KV_${INTEGRATION_STATE_BUCKET}`), signal);
        if (probed.aborted) return;
      } catch (err) {
        error = err instanceof FerryNatsError && err.retryable ? `the shared state (KV bucket ${INTEGRATION_STATE_BUCKET}) cannot be served: ${err.message}` : undefined;
      }
      if (error !== this.sharedError) {
        this.sharedError = error;
        if (error === undefined) this.log.info('shared state available again');
        else this.log.warn({ err: error }, 'shared state unavailable');
        this.refreshPrefixes();
        for (const key of this.byPrefix.values()) this.publish(key);
      }
      await this.deps.clock.sleep(SHARED_PROBE_MS, signal).catch(() => undefined);
    }
  }

  private rawOf(key: string): Raw {
    const uid = this.deps.integrations.get(key)?.metadata?.uid;
    const r = this.raw.get(key);
    if (r && r.uid === uid) return r;
    this.views.delete(key);
    const fresh: Raw = { uid, fallbackCountedAt: 0, recount: true };
    this.raw.set(key, fresh);
    return fresh;
  }

  private refreshPrefixes(): void {
    this.byPrefix.clear();
    for (const obj of this.deps.integrations.list()) {
      const ns = obj.metadata?.namespace;
      const name = obj.metadata?.name;
      if (ns && name) this.byPrefix.set(integrationStateKeyPrefix({ namespace: ns, name }), `${ns}/${name}`);
    }
  }

  private async watchLoop(signal: AbortSignal): Promise<void> {
    await this.deps.state.watchUntilAborted(
      '>',
      (kvKey, value) => {
        const dot = kvKey.lastIndexOf('.');
        const prefix = kvKey.slice(0, dot);
        if (!this.byPrefix.has(prefix)) this.refreshPrefixes();
        const key = this.byPrefix.get(prefix);
        if (!key) return;
        const r = this.rawOf(key);
        switch (kvKey.slice(dot + 1)) {
          case 'stats': {
            const stats = value as SharedStats | undefined;
            if (stats?.fallback !== r.stats?.fallback) r.recount = true;
            r.stats = stats;
            break;
          }
          case 'circuit':
            r.circuit = value as SharedCircuit | undefined;
            break;
          case 'throttle':
            r.throttle = value as SharedThrottle | undefined;
            break;
          case 'redrive': {
            const redrive = value as SharedRedrive | undefined;
            // A delivered message leaves the fallback stream, a failed one is parked again: count it.
            if (redrive?.delivered !== r.redrive?.delivered || redrive?.failedAgain !== r.redrive?.failedAgain) r.recount = true;
            r.redrive = redrive;
            break;
          }
          default:
            return;
        }
        this.publish(key);
      },
      signal,
      (ms, s) => this.deps.clock.sleep(ms, s),
      (err) => {
        this.log[err instanceof KvWatchStalledError ? 'warn' : 'debug']({ err: err instanceof Error ? err.message : String(err) }, 'shared state watch failed; retrying');
      },
    );
  }

  private async fallbackLoop(signal: AbortSignal): Promise<void> {
    const recountMs = this.deps.fallbackRecountMs ?? 60_000;
    // A function, not the property: TypeScript narrows `signal.aborted` across awaits otherwise.
    const aborted = (): boolean => signal.aborted;
    while (!aborted()) {
      this.refreshPrefixes();
      const now = this.deps.clock.now();
      for (const key of this.byPrefix.values()) {
        if (aborted()) return;
        const r = this.rawOf(key);
        if (!r.recount && now - r.fallbackCountedAt < recountMs) continue;
        const [namespace = '', name = ''] = key.split('/');
        // Cleared before asking, not after: a park the KV watch reports while the count is on its
        // way may not be in it, and must trigger the next count instead of being forgotten.
        r.recount = false;
        try {
          // Not waiting out a request when the term ends: with NATS gone each one takes its full
          // timeout, and the Lease is released only after every leader runnable returned.
          const counted = await untilAborted(this.deps.jetstream.streamMessages(fallbackStreamName({ namespace, name })), signal);
          if (counted.aborted) return;
          r.fallbackPending = counted.value;
          r.fallbackCountedAt = now;
          r.fallbackError = undefined;
          this.publish(key);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          this.log.debug({ integration: key, err: message }, 'could not count the fallback stream');
          r.recount = true;
          if (err instanceof FerryNatsError && err.retryable) {
            // Looked at again next second; meanwhile status says what is unavailable.
            r.fallbackError = message;
            this.publish(key);
          }
        }
      }
      const live = new Set(this.byPrefix.values());
      for (const key of this.raw.keys()) if (!live.has(key)) this.forget(key);
      await this.deps.clock.sleep(1_000, signal).catch(() => undefined);
    }
  }

  /**
   * Every second, for each Integration with spec.sla: its figures (see SlaTracker), so an outage
   * (target down, circuit open) is seen while it lasts, not only once the late events are acked.
   */
  private async slaLoop(signal: AbortSignal): Promise<void> {
    const aborted = (): boolean => signal.aborted;
    while (!aborted()) {
      const live = new Set<string>();
      for (const obj of this.deps.integrations.list()) {
        if (aborted()) return;
        const ns = obj.metadata?.namespace;
        const name = obj.metadata?.name;
        if (!ns || !name) continue;
        live.add(obj.metadata.uid ?? '');
        const key = `${ns}/${name}`;
        const r = this.rawOf(key);
        const sla = await this.sla.measure(obj, r.stats, signal);
        if (aborted()) return;
        if (sla === undefined && r.sla === undefined) continue;
        r.sla = sla;
        this.publish(key);
      }
      this.sla.retain(live);
      await this.deps.clock.sleep(SLA_TICK_MS, signal).catch(() => undefined);
    }
  }

  private forget(key: string): void {
    this.raw.delete(key);
    this.views.delete(key);
  }

  /**
   * The reconcile has just created the Integration's fallback stream, so it holds nothing: taken
   * as this Integration's count without asking, and without requeueing it (the reconcile writes
   * that count itself). Otherwise the first count, a minute later, would look like a change and
   * cost every new Integration a second reconcile.
   */
  fallbackCreated(key: string): void {
    const r = this.rawOf(key);
    r.fallbackPending = 0;
    r.fallbackCountedAt = this.deps.clock.now();
    r.fallbackError = undefined;
    r.recount = false;
    this.publish(key, false);
  }

  /** Stores the new view; when it changed, enqueues the Integration (unless told not to) and raises escalations. */
  private publish(key: string, enqueue = true): void {
    const r = this.rawOf(key);
    const unavailable = this.sharedError ?? r.fallbackError;
    const next: RuntimeView = {
      stats: r.stats,
      circuit: r.circuit,
      throttle: r.throttle,
      fallbackPending: r.fallbackPending,
      ...(r.redrive === undefined ? {} : { redrive: r.redrive }),
      ...(unavailable === undefined ? {} : { unavailable }),
      ...(r.sla === undefined ? {} : { sla: r.sla }),
    };
    const previous = this.views.get(key);
    if (JSON.stringify(previous) === JSON.stringify(next)) return;
    this.views.set(key, next);
    // A first view with nothing in it (no stats yet, no fallback stream yet) changes no status.
    if (enqueue && !(previous === undefined && Object.keys(next).length === 0)) this.deps.queue.add(key);
    const obj = this.deps.integrations.get(key);
    if (!obj) return;
    this.escalate(obj, r, next, previous);
  }

  /**
   * Escalations as Warning Events: on the change into a state, then at most once per interval
   * per reason while it lasts or keeps coming back (EscalationLimiter), each saying what to do.
   */
  private escalate(obj: FerryObject, r: Raw, next: RuntimeView, previous: RuntimeView | undefined): void {
    const now = this.deps.clock.now();
    const warn = (reason: Reason, note: string): void => {
      if (!this.escalations.allow(`${obj.metadata?.uid ?? ''}/${reason}`, now)) return;
      void this.deps.events.record(obj, { type: 'Warning', reason, note, action: 'Deliver' });
    };
    if (next.unavailable !== undefined && previous?.unavailable === undefined) {
      warn(Reason.JetStreamUnavailable, `JetStream state unavailable: ${next.unavailable}; check the NATS cluster (quorum, leaders) — delivery continues where it can, events that must be parked wait in their source stream`);
    }
    if (next.circuit && next.circuit.state === 'Open' && previous?.circuit?.state !== 'Open') {
      warn(Reason.CircuitOpen, circuitOpenMessage(next.circuit, next.stats?.lastError, obj.spec));
    }
    const pending = next.fallbackPending;
    if (pending !== undefined) {
      if (!r.fallbackLooked) {
        // First look (a new leader): what status already says was warned about by someone.
        r.fallbackLooked = true;
        const before = typeof obj.status?.fallbackPending === 'number' ? obj.status.fallbackPending : pending;
        r.fallbackWarned = before > 0 ? before : undefined;
      }
      const w = fallbackWarning(r.fallbackWarned, pending);
      r.fallbackWarned = w.warned;
      if (w.warn) warn(Reason.FallbackGrowing, fallbackGrowingMessage(pending, fallbackStreamName(refOfKey(obj)), next.stats?.lastError));
    }
    const unauthorized = next.stats?.lastUnauthorized;
    if (unauthorized && unauthorizedNow(next.stats) && !unauthorizedNow(previous?.stats)) {
      warn(Reason.TargetUnauthorized, unauthorizedMessage(unauthorized, obj.spec));
    }
    const fallbackFailure = next.stats?.lastFallbackFailure;
    if (fallbackFailure && fallbackFailingNow(next.stats) && !fallbackFailingNow(previous?.stats)) {
      warn(Reason.FallbackUnavailable, `${fallbackFailureMessage(fallbackFailure)}; check the fallback stream ${fallbackStreamName(refOfKey(obj))} (full, missing, no quorum)`);
    }
    this.announceRedrive(obj, next.redrive, previous?.redrive);
    if (next.stats?.lastContractDrift !== undefined && next.stats.lastContractDrift !== previous?.stats?.lastContractDrift) {
      const err = next.stats.lastError?.reason === 'contract' ? next.stats.lastError.message : 'a 2xx response broke spec.target.responseSchema';
      warn(Reason.ContractDrift, `${err}; the event was parked (reason contract): the target's API changed — update spec.target.responseSchema or ask the target's owners`);
    }
    const sla = next.sla;
    const verdict = sla ? slaVerdict(sla, sla.oldestPendingMs, sla, now) : undefined;
    if (sla && verdict?.missed) warn(Reason.SlaMissed, slaMissedMessage(sla, verdict.why ?? ''));
  }

  /**
   * One Event when a redrive ends: on the change into a final result, and not again when a new
   * leader (no previous view) finds a result its status already shows.
   */
  private announceRedrive(obj: FerryObject, next: SharedRedrive | undefined, previous: SharedRedrive | undefined): void {
    if (!next || next.result === 'Running') return;
    if (previous?.request === next.request && previous.result === next.result) return;
    const shown = obj.status?.lastRedrive as { request?: unknown; result?: unknown } | undefined;
    if (!previous && shown?.request === next.request && shown.result === next.result) return;
    const event = redriveEndedEvent(next);
    if (event) void this.deps.events.record(obj, { ...event, action: 'Redrive' });
  }
}

function refOfKey(obj: FerryObject): { namespace: string; name: string } {
  return { namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' };
}
