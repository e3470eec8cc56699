/**
 * The steps both reconcilers share: the finalizer's add and release, writing status only when
 * it changed, and reporting a stalled or progressing generation (status, log, Warning Event).
 * One implementation, so both kinds behave the same for kstatus readers.
 *
 * Every decision about "what status does the object have now" goes through `statusOf`, which
 * prefers what this reconciler wrote over a cache that has not caught up with the write
 * (written-status.ts): a requeue right after a write must not announce Ready or Stalled again.
 */
import { FINALIZER, type Reason } from '../api/index.ts';
import { isNotFound, type EventRecorder, type ObjectClient, type ResourceType } from '../kube/index.ts';
import type { Logger } from '../observability/index.ts';
import { refOf, statusUnchanged, type FerryObject, type FerryObjectStatus } from './ferry-object.ts';
import { statusFor, type DegradedUpdate } from './status.ts';
import { WrittenStatus } from './written-status.ts';

export interface StepDeps {
  readonly client: ObjectClient;
  readonly events: EventRecorder;
  readonly log: Logger;
}

export class ReconcileSteps {
  private readonly type: ResourceType;
  private readonly deps: StepDeps;
  private readonly written = new WrittenStatus();

  constructor(type: ResourceType, deps: StepDeps) {
    this.type = type;
    this.deps = deps;
  }

  /** The object's status as far as this reconciler knows: its own last write if the cache lags behind it. */
  statusOf(obj: FerryObject): FerryObjectStatus | undefined {
    return this.written.current(keyOf(obj), obj);
  }

  /** Whether the object was Ready before this reconcile, by {@link statusOf}. */
  wasReady(obj: FerryObject): boolean {
    return readyIn(this.statusOf(obj));
  }

  async writeStatus(obj: FerryObject, next: FerryObjectStatus, signal: AbortSignal): Promise<void> {
    if (statusUnchanged(this.statusOf(obj), next)) return;
    await this.deps.client.mergeStatus(refOf(this.type, obj), next, { signal });
    this.written.record(keyOf(obj), obj, next);
  }

  /**
   * Adds the finalizer when missing and returns the object to go on with: `obj` itself, or the
   * object as the API server stored it with the finalizer (its resourceVersion is the one later
   * writes are based on). The caller carries on in the same reconcile: stopping here and waiting
   * for the patch's watch event made every new object cost two reconciles and a queue round trip
   * (at N = 1,000 half of all reconciles did nothing else). That watch event is therefore not
   * worth a reconcile of its own (watch-predicates.ts); a failure later in this reconcile is
   * retried by the work queue as any other.
   */
  async withFinalizer(obj: FerryObject, signal: AbortSignal): Promise<FerryObject> {
    const meta = obj.metadata;
    if (meta?.finalizers?.includes(FINALIZER)) return obj;
    return await this.deps.client.patchMerge<FerryObject>(refOf(this.type, obj), { metadata: { finalizers: [...(meta?.finalizers ?? []), FINALIZER] } }, { resourceVersion: meta?.resourceVersion, signal });
  }

  /** Removes the finalizer after cleanup; an object already gone is fine. */
  async releaseFinalizer(obj: FerryObject, signal: AbortSignal): Promise<void> {
    this.written.forget(keyOf(obj));
    const finalizers = (obj.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER);
    try {
      await this.deps.client.patchMerge(refOf(this.type, obj), { metadata: { finalizers } }, { resourceVersion: obj.metadata?.resourceVersion, signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * A terminal configuration problem: Stalled=True with the field in the message. Logged and
   * sent as a Warning Event once per distinct message, not on every requeue. `extra` and
   * `degraded` carry what the runtime still reports (a last good generation keeps delivering).
   */
  async reportStalled(
    obj: FerryObject,
    problem: { readonly reason: Reason; readonly message: string; readonly field?: string },
    generation: number,
    now: number,
    fields: Readonly<Record<string, unknown>>,
    signal: AbortSignal,
    extra: Readonly<Record<string, unknown>> = {},
    degraded?: DegradedUpdate,
  ): Promise<void> {
    const current = this.statusOf(obj);
    const already = current?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True' && c.message === problem.message);
    await this.writeStatus(obj, statusFor({ kind: 'stalled', reason: problem.reason, message: problem.message }, current, generation, now, extra, degraded), signal);
    if (already) return;
    this.deps.log.warn({ ...fields, reason: problem.reason, field: problem.field }, problem.message);
    void this.deps.events.record(obj, { type: 'Warning', reason: problem.reason, note: problem.message, action: 'Reconcile' });
  }

  /**
   * A transient failure about to be retried by the work queue: Reconciling=True says so. The
   * write is best effort (the API server may be what failed); the caller rethrows.
   */
  async reportProgressing(obj: FerryObject, reason: Reason, err: unknown, generation: number, now: number, fields: Readonly<Record<string, unknown>>, signal: AbortSignal): Promise<void> {
    const message = err instanceof Error ? err.message : 'provisioning failed';
    await this.writeStatus(obj, statusFor({ kind: 'progressing', reason, message }, this.statusOf(obj), generation, now), signal).catch((writeErr: unknown) => {
      this.deps.log.warn({ ...fields, err: writeErr }, 'could not write status');
    });
  }

  /**
   * Ready stays as it was (the runtime keeps delivering) while `Degraded=True` says which part of
   * Ferry's state is unavailable; the caller rethrows so the work queue retries with backoff.
   * Best effort, like {@link reportProgressing}.
   */
  async reportUnavailable(
    obj: FerryObject,
    reason: Reason,
    message: string,
    generation: number,
    now: number,
    fields: Readonly<Record<string, unknown>>,
    signal: AbortSignal,
    extra: Readonly<Record<string, unknown>> = {},
  ): Promise<void> {
    const current = this.statusOf(obj);
    const ready = current?.conditions?.find((c) => c.type === 'Ready');
    // Only called for an object Ready at this generation: keep that condition as it is.
    const outcome = { kind: 'ready' as const, reason: (ready?.reason ?? 'Delivering') as Reason, message: ready?.message ?? '' };
    await this.writeStatus(obj, statusFor(outcome, current, generation, now, extra, { status: 'True', reason, message }), signal).catch((writeErr: unknown) => {
      this.deps.log.warn({ ...fields, err: writeErr }, 'could not write status');
    });
    if (current?.conditions?.some((c) => c.type === 'Degraded' && c.reason === reason)) return;
    this.deps.log.warn({ ...fields, reason }, message);
    void this.deps.events.record(obj, { type: 'Warning', reason, note: message, action: 'Reconcile' });
  }

  /** A Normal Event when the object turns Ready (not on every reconcile); `wasReady` from {@link wasReady}. */
  announceReady(obj: FerryObject, wasReady: boolean, reason: Reason, message: string, fields: Readonly<Record<string, unknown>>, what: string): void {
    if (wasReady) return;
    this.deps.log.info(fields, `${what} ready`);
    void this.deps.events.record(obj, { type: 'Normal', reason, note: message, action: 'Reconcile' });
  }
}

export function isReady(obj: FerryObject): boolean {
  return readyIn(obj.status);
}

function readyIn(status: FerryObjectStatus | undefined): boolean {
  return status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function keyOf(obj: FerryObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
