/**
 * The leader's view of what the runtime replicas report through JetStream KV (counters, circuit,
 * throttle) and of each fallback stream's size, turned into status fields and the Degraded
 * condition.
 *
 * The poller never writes status itself: it stores the view and enqueues the Integration, so the
 * reconciler stays the single writer of each object's status (the work queue runs one reconcile
 * per key at a time) and no status write can undo another.
 */
import { formatKubeTime, Reason } from '../api/index.ts';
import type { EventRecorder, Store, WorkQueue } from '../kube/index.ts';
import {
  circuitKey,
  fallbackStreamName,
  statsKey,
  throttleKey,
  type JetStreamResources,
  type SharedCircuit,
  type SharedKv,
  type SharedStats,
  type SharedThrottle,
} from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import type { FerryObject } from './ferry-object.ts';

export interface RuntimeView {
  readonly stats?: SharedStats | undefined;
  readonly circuit?: SharedCircuit | undefined;
  readonly throttle?: SharedThrottle | undefined;
  readonly fallbackPending?: number | undefined;
}

/** A contract failure this recent keeps Degraded=True (ContractDrift). */
export const CONTRACT_DRIFT_WINDOW_MS = 15 * 60_000;

export interface Degradation {
  readonly status: 'True' | 'False';
  readonly reason: Reason;
  readonly message: string;
}

/** Degraded, from the runtime view: an open circuit first, then recent contract drift. */
export function degradation(view: RuntimeView | undefined, now: number): Degradation {
  const c = view?.circuit;
  if (c && c.state !== 'Closed') {
    const until = c.openUntil === undefined ? '' : `; next probe after ${formatKubeTime(c.openUntil)}`;
    return { status: 'True', reason: Reason.CircuitOpen, message: `circuit ${c.state} after ${c.consecutiveFailures} failures${until}: consumption paused` };
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
  return { status: 'False', reason: Reason.Healthy, message: 'no degradation observed' };
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
  const t = view.throttle;
  if (t && t.limitedUntil > now - 60_000) {
    out.throttle = { limitedUntil: formatKubeTime(t.limitedUntil), ...(t.perSecond > 0 ? { perSecond: Math.round(t.perSecond * 1000) / 1000 } : {}) };
  }
  return out;
}

export interface RuntimeViewPollerDeps {
  readonly integrations: Store<FerryObject>;
  readonly queue: WorkQueue;
  readonly state: SharedKv;
  readonly jetstream: JetStreamResources;
  readonly events: EventRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Status is written at most this often per object from runtime changes. */
  readonly intervalMs?: number;
}

/** Leader-only: polls KV and fallback streams, keeps the latest view per Integration. */
export class RuntimeViewPoller {
  readonly name = 'runtime status';
  private readonly deps: RuntimeViewPollerDeps;
  private readonly views = new Map<string, RuntimeView>();

  constructor(deps: RuntimeViewPollerDeps) {
    this.deps = deps;
  }

  view(key: string): RuntimeView | undefined {
    return this.views.get(key);
  }

  async start(signal: AbortSignal): Promise<void> {
    const log = this.deps.logger.child({ component: 'runtime-status' });
    while (!signal.aborted) {
      for (const obj of this.deps.integrations.list()) {
        const ns = obj.metadata?.namespace;
        const name = obj.metadata?.name;
        if (!ns || !name || obj.metadata.deletionTimestamp) continue;
        const key = `${ns}/${name}`;
        try {
          await this.poll(key, obj, { namespace: ns, name });
        } catch (err) {
          log.debug({ integration: key, err: err instanceof Error ? err.message : String(err) }, 'could not read runtime state');
        }
      }
      await this.deps.clock.sleep(this.deps.intervalMs ?? 2_000, signal).catch(() => undefined);
    }
  }

  private async poll(key: string, obj: FerryObject, ref: { namespace: string; name: string }): Promise<void> {
    const [stats, circuit, throttle, fallbackPending] = await Promise.all([
      this.deps.state.get<SharedStats>(statsKey(ref)),
      this.deps.state.get<SharedCircuit>(circuitKey(ref)),
      this.deps.state.get<SharedThrottle>(throttleKey(ref)),
      this.deps.jetstream.streamMessages(fallbackStreamName(ref)),
    ]);
    const next: RuntimeView = { stats: stats?.value, circuit: circuit?.value, throttle: throttle?.value, fallbackPending };
    const previous = this.views.get(key);
    if (JSON.stringify(previous) === JSON.stringify(next)) return;
    this.views.set(key, next);
    this.deps.queue.add(key);
    // Escalations as Warning Events, on the change only (the recorder also folds repeats).
    if (next.circuit && next.circuit.state === 'Open' && previous?.circuit?.state !== 'Open') {
      void this.deps.events.record(obj, { type: 'Warning', reason: Reason.CircuitOpen, note: `circuit opened after ${next.circuit.consecutiveFailures} failures; consumption paused`, action: 'Deliver' });
    }
    // Growth against what this leader saw last, or (first look, e.g. a new leader) against status.
    const before = previous ? previous.fallbackPending : typeof obj.status?.fallbackPending === 'number' ? obj.status.fallbackPending : undefined;
    if (before !== undefined && (next.fallbackPending ?? 0) > before) {
      void this.deps.events.record(obj, {
        type: 'Warning',
        reason: Reason.FallbackGrowing,
        note: `${next.fallbackPending ?? 0} events parked in the fallback stream (was ${before}); last error: ${next.stats?.lastError?.message ?? 'unknown'}`,
        action: 'Deliver',
      });
    }
    if (next.stats?.lastContractDrift !== undefined && next.stats.lastContractDrift !== previous?.stats?.lastContractDrift) {
      void this.deps.events.record(obj, { type: 'Warning', reason: Reason.ContractDrift, note: next.stats.lastError?.message ?? 'a 2xx response broke spec.target.responseSchema', action: 'Deliver' });
    }
  }
}
