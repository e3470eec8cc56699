/**
 * Runs SyncSchedules on every replica: decides when a run is due (cron in the spec's time zone,
 * `suspend`, a starting deadline for slots missed while no operator ran, the `ferry.dev/run-now`
 * annotation), takes the run's lock (exactly one replica runs a slot), runs it, renews the lock
 * while it runs and releases it at the end.
 *
 * Guarantees:
 * - A slot runs at most once across all replicas; slots missed while nothing ran are run once
 *   (the latest), if not older than the starting deadline, else recorded as Skipped.
 * - `Forbid`: a slot due while a run holds the lock is Skipped (reported). `Replace`: the new run
 *   takes the lock and the old run, wherever it runs, stops at its next step.
 * - A runner that dies stops renewing; its lock expires after the TTL and the next trigger runs.
 * - One SyncSchedule's problems (bad spec, NATS errors on its keys) are logged against it and
 *   never stop the others.
 */
import { randomUUID } from 'node:crypto';
import { checkSyncScheduleSpec, inputsKey, RUN_NOW_ANNOTATION, type AuthCredentials, type CompiledSyncScheduleSpec, type ReferenceLookup } from '../api/index.ts';
import { withAuth, type AuthProvider, type Deliverer } from '../delivery/index.ts';
import type { KubeObject, Store } from '../kube/index.ts';
import { SharedKv, syncFallbackSubject, syncRunsKeyPrefix, syncStateBucketName, type FallbackPublisher, type JetStreamResources, type NatsConnection } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { RunCancelledError, RunLockLostError } from './errors.ts';
import { HttpCaller } from './http-call.ts';
import type { SyncMetrics } from './metrics.ts';
import { ReportWriter } from './report.ts';
import { RunLock, type LockRecord, type Trigger } from './run-lock.ts';
import { planSchedule } from './schedule-plan.ts';
import { SyncState } from './state.ts';
import { SyncRunner, type RecordTransformer } from './sync-run.ts';

export { RUN_NOW_ANNOTATION };
/** Default lease of a run lock; renewed every third of it. */
export const DEFAULT_LOCK_TTL_MS = 30_000;
const TICK_MS = 1_000;

export interface SyncScheduleObject extends KubeObject {
  readonly metadata?: KubeObject['metadata'] & {
    readonly deletionTimestamp?: string;
    readonly creationTimestamp?: string;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec?: unknown;
}

export interface SyncSchedulerDeps {
  readonly syncSchedules: Store<SyncScheduleObject>;
  /**
   * The namespace's Secrets and ConfigMaps (the watch caches), with their versions: a rotated
   * Secret must change what a run compiles with.
   */
  readonly references: ReferenceLookup & { readonly version: NonNullable<ReferenceLookup['version']> };
  readonly nc: NatsConnection;
  /** SYNC_RUNS_BUCKET: locks and reports. */
  readonly runs: SharedKv;
  /** A SyncSchedule's own bucket and fallback stream, ensured before each of its runs. */
  readonly stores: Pick<JetStreamResources, 'ensureSyncScheduleStores'>;
  readonly publisher: FallbackPublisher;
  /** HTTP with a response limit large enough for source pages. */
  readonly deliverer: Deliverer;
  /** Outbound credentials as an auth provider (the runtime's, shared by both kinds). */
  authFor(credentials: AuthCredentials): AuthProvider;
  readonly transform: RecordTransformer;
  readonly metrics: SyncMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly identity: string;
  readonly lockTtlMs?: number;
  /** Live replicas: rate limits are shared by all of them. */
  members(): number;
}

interface Active {
  readonly runId: string;
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

export class SyncScheduler {
  readonly name = 'sync';
  private readonly d: SyncSchedulerDeps;
  private readonly log: Logger;
  private readonly ttl: number;
  private readonly locks = new Map<string, LockRecord>();
  private readonly active = new Map<string, Active>();
  /** Triggers being acted on here (acquire in flight), so one tick does not start two. */
  private readonly pending = new Set<string>();
  private readonly compiled = new Map<string, { inputs: string; spec: CompiledSyncScheduleSpec | undefined }>();
  private wake: (() => void) | undefined;
  /** Per SyncSchedule that ran here, its hashes after the run and the bucket version then. */
  private readonly hashCaches = new Map<string, { uid: string; version: number; hashes: Map<string, string> }>();
  /** Per SyncSchedule, what its last look saw when nothing was due, and until when that holds. */
  private readonly idle = new Map<string, { spec: CompiledSyncScheduleSpec; lock: LockRecord | undefined; manual: string | undefined; until: number | undefined }>();

  constructor(deps: SyncSchedulerDeps) {
    this.d = deps;
    this.ttl = deps.lockTtlMs ?? DEFAULT_LOCK_TTL_MS;
    this.log = deps.logger.child({ component: 'sync' });
  }

  notify(): void {
    this.wake?.();
  }

  async start(signal: AbortSignal): Promise<void> {
    const watching = this.d.runs.watchUntilAborted(
      '*.*.lock',
      (key, value) => {
        this.onLock(key.slice(0, -'.lock'.length), value as LockRecord | undefined);
      },
      signal,
      (ms, s) => this.d.clock.sleep(ms, s),
      (err) => {
        this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'sync lock watch failed; retrying');
      },
    );
    while (!signal.aborted) {
      this.tick();
      await new Promise<void>((resolve) => {
        const cancel = this.d.clock.setTimer(resolve, TICK_MS);
        this.wake = () => {
          cancel();
          resolve();
        };
        signal.addEventListener('abort', () => { this.wake?.(); }, { once: true });
      });
      this.wake = undefined;
    }
    for (const a of this.active.values()) a.abort.abort(new RunCancelledError('the operator is shutting down'));
    await Promise.all([...this.active.values()].map((a) => a.done));
    await watching;
  }

  private onLock(prefix: string, lock: LockRecord | undefined): void {
    if (lock) this.locks.set(prefix, lock);
    else this.locks.delete(prefix);
    const mine = this.active.get(prefix);
    // Replaced (another run took the lock) or taken over after expiry: stop writing now.
    if (mine && lock?.runId !== mine.runId) mine.abort.abort(new RunLockLostError(`replaced by run ${lock?.runId ?? '(none)'}`));
  }

  private compile(obj: SyncScheduleObject, now: number): CompiledSyncScheduleSpec | undefined {
    const meta = obj.metadata ?? {};
    const ns = meta.namespace ?? '';
    const key = `${ns}/${meta.name ?? ''}`;
    const inputs = inputsKey(meta.uid, meta.generation ?? 0, obj.spec, (kind, name) =>
      this.d.references.version(kind, ns, name),
    );
    const cached = this.compiled.get(key);
    if (cached?.inputs === inputs) return cached.spec;
    const check = checkSyncScheduleSpec(ns, obj.spec, this.d.references, new Date(now));
    // The controller reports a bad spec (Stalled); the scheduler just does not run it.
    const spec = check.ok ? check.config : undefined;
    if (!check.ok) this.log.warn({ syncSchedule: key, field: check.field }, `not running: ${check.message}`);
    this.compiled.set(key, { inputs, spec });
    return spec;
  }

  private tick(): void {
    const now = this.d.clock.now();
    const present = new Set<string>();
    for (const obj of this.d.syncSchedules.list()) {
      const meta = obj.metadata;
      if (!meta?.name || !meta.namespace || meta.deletionTimestamp) continue;
      const key = `${meta.namespace}/${meta.name}`;
      present.add(key);
      try {
        this.consider(obj, now);
      } catch (err) {
        this.log.error({ syncSchedule: key, err }, 'could not schedule this SyncSchedule; trying again');
      }
    }
    for (const key of this.compiled.keys()) if (!present.has(key)) this.compiled.delete(key);
    if (this.idle.size > present.size) this.idle.clear();
    if (this.hashCaches.size > 0) {
      const live = new Set([...present].map((k) => syncRunsKeyPrefix({ namespace: k.slice(0, k.indexOf('/')), name: k.slice(k.indexOf('/') + 1) })));
      for (const prefix of this.hashCaches.keys()) if (!live.has(prefix)) this.hashCaches.delete(prefix);
    }
  }

  private consider(obj: SyncScheduleObject, now: number): void {
    const meta = obj.metadata ?? {};
    const ref = { namespace: meta.namespace ?? '', name: meta.name ?? '' };
    const prefix = syncRunsKeyPrefix(ref);
    // A run of it active here does not end the look: a trigger due meanwhile goes through
    // acquire, which under Forbid records it Skipped (and marks it taken) and under Replace takes
    // the lock. Returning early here for Forbid recorded no skip and, worse, ran the missed slot
    // late as soon as the long run ended, back to back, off its slot.
    const spec = this.compile(obj, now);
    if (!spec) return;
    const lock = this.locks.get(prefix);
    const manual = meta.annotations?.[RUN_NOW_ANNOTATION];
    // Nothing changed since the last look and the next slot is still ahead: no cron evaluation
    // (about 80 µs in a time zone), so a thousand idle SyncSchedules cost nothing per tick.
    const idle = this.idle.get(prefix);
    if (idle && idle.spec === spec && idle.lock === lock && idle.manual === manual && idle.until !== undefined && now < idle.until) return;
    this.idle.delete(prefix);
    let trigger: Trigger | undefined;
    let deadline: number | undefined;
    const notBefore = new Date(meta.creationTimestamp ? Date.parse(meta.creationTimestamp) : now);
    const plan = planSchedule({
      schedule: spec.schedule,
      timeZone: spec.timeZone,
      now: new Date(now),
      lastSlot: lock?.lastSlot === undefined ? undefined : new Date(lock.lastSlot),
      notBefore,
      startingDeadlineMs: spec.startingDeadlineMs,
    });
    deadline = plan.next?.getTime();
    if (manual && manual !== lock?.lastManual) trigger = { kind: 'manual', value: manual };
    else if (!spec.suspend && plan.kind === 'run') trigger = { kind: 'slot', slot: plan.slot.getTime() };
    else if (!spec.suspend && plan.kind === 'wait' && plan.expired) {
      this.skipExpired(ref, prefix, meta.uid ?? '', plan.expired.slot.getTime(), spec.startingDeadlineMs);
      return;
    }
    if (!trigger) {
      if (plan.kind === 'wait' && !plan.expired) this.idle.set(prefix, { spec, lock, manual, until: plan.next?.getTime() });
      return;
    }
    const id = `${prefix}|${trigger.kind === 'slot' ? trigger.slot : `m:${trigger.value}`}`;
    if (this.pending.has(id)) return;
    this.pending.add(id);
    deadline ??= now + 24 * 3_600_000;
    void this.attempt(ref, prefix, meta.uid ?? '', spec, trigger, deadline)
      .catch((err: unknown) => {
        this.log.error({ syncSchedule: `${ref.namespace}/${ref.name}`, err }, 'could not start a sync run');
      })
      .finally(() => this.pending.delete(id));
  }

  private skipExpired(ref: { namespace: string; name: string }, prefix: string, uid: string, slot: number, deadlineMs: number | undefined): void {
    const id = `${prefix}|expired:${slot}`;
    if (this.pending.has(id)) return;
    this.pending.add(id);
    const lock = new RunLock(this.d.runs, prefix);
    const runId = randomUUID().slice(0, 8);
    void (async () => {
      if (!(await lock.markTaken({ kind: 'slot', slot }))) return;
      const at = new Date(this.d.clock.now()).toISOString();
      await new ReportWriter(this.d.runs, prefix, uid).finished(
        { id: runId, startedAt: at, finishedAt: at, result: 'Skipped', message: `the run due at ${new Date(slot).toISOString()} was missed by more than the starting deadline (${Math.round((deadlineMs ?? 3_600_000) / 1000)}s)` },
        { scheduled: true, events: [] },
      );
    })()
      .catch((err: unknown) => {
        this.log.warn({ syncSchedule: `${ref.namespace}/${ref.name}`, err: err instanceof Error ? err.message : String(err) }, 'could not record a missed run');
      })
      .finally(() => this.pending.delete(id));
  }

  private async attempt(ref: { namespace: string; name: string }, prefix: string, uid: string, spec: CompiledSyncScheduleSpec, trigger: Trigger, deadline: number): Promise<void> {
    const runId = `${new Date(this.d.clock.now()).toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomUUID().slice(0, 6)}`;
    const lock = new RunLock(this.d.runs, prefix);
    const now = this.d.clock.now();
    const got = await lock.acquire({ trigger, owner: this.d.identity, runId, now, ttlMs: this.ttl, replace: spec.concurrencyPolicy === 'Replace' });
    const report = new ReportWriter(this.d.runs, prefix, uid);
    const scheduled = trigger.kind === 'slot';
    const log = this.log.child({ namespace: ref.namespace, syncSchedule: ref.name, runId });
    if (got.kind === 'taken') return;
    if (got.kind === 'skipped') {
      const at = new Date(now).toISOString();
      log.info({ holder: got.holder }, 'run skipped: the previous run is still running (Forbid)');
      await report.finished({ id: runId, startedAt: at, finishedAt: at, result: 'Skipped', message: `the previous run (on ${got.holder}) was still running; concurrencyPolicy Forbid` }, { scheduled, events: [] });
      return;
    }
    if (got.replaced) log.info({ replaced: got.replaced }, 'replacing the running run (concurrencyPolicy Replace)');
    // Wait for a replaced local run to stop before this one starts writing.
    const previous = this.active.get(prefix);
    if (previous) {
      previous.abort.abort(new RunLockLostError(`replaced by run ${runId}`));
      await previous.done;
    }
    const abort = new AbortController();
    const renew = async (): Promise<void> => {
      const stopped = (): boolean => abort.signal.aborted;
      while (!stopped()) {
        await this.d.clock.sleep(this.ttl / 3, abort.signal).catch(() => undefined);
        if (stopped()) return;
        try {
          // By run id, not revision: skips recorded meanwhile rewrite the record (see RunLock.renew).
          if ((await lock.renew(runId, this.d.clock.now(), this.ttl)) === undefined) {
            abort.abort(new RunLockLostError('the run lock was taken over (replaced, or it expired while this run was paused)'));
            return;
          }
        } catch (err) {
          log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not renew the run lock; trying again');
        }
      }
    };
    const done = (async () => {
      const renewing = renew();
      try {
        await this.execute(ref, uid, spec, runId, scheduled, deadline, abort.signal, report, log);
      } finally {
        abort.abort();
        await renewing;
        await lock.release(runId).catch((err: unknown) => {
          log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not release the run lock; it expires on its own');
        });
        if (this.active.get(prefix)?.runId === runId) this.active.delete(prefix);
      }
    })();
    this.active.set(prefix, { runId, abort, done });
    await done;
  }

  private async execute(
    ref: { namespace: string; name: string },
    uid: string,
    spec: CompiledSyncScheduleSpec,
    runId: string,
    scheduled: boolean,
    deadline: number,
    signal: AbortSignal,
    report: ReportWriter,
    log: Logger,
  ): Promise<void> {
    const members = Math.max(1, this.d.members());
    const share = (r: { perSecond: number; burst: number } | undefined) =>
      r === undefined ? undefined : { perSecond: r.perSecond / members, burst: Math.max(1, Math.floor(r.burst / members)) };
    const send = (c: AuthCredentials | undefined): Deliverer => (c ? withAuth(this.d.deliverer, this.d.authFor(c)) : this.d.deliverer);
    const source = new HttpCaller({ send: send(spec.sourceCredentials), clock: this.d.clock, perSecond: share(spec.source.rateLimit), deadline, signal });
    const target = new HttpCaller({ send: send(spec.targetCredentials), clock: this.d.clock, perSecond: share(spec.rateLimit), deadline, signal });
    const runner = new SyncRunner({
      ref: { ...ref, uid },
      spec,
      state: new SyncState(new SharedKv(this.d.nc, syncStateBucketName(ref))),
      ensureStores: () => this.d.stores.ensureSyncScheduleStores(ref, spec.fallback.retentionMs),
      report,
      source,
      target,
      transform: this.d.transform,
      publisher: this.d.publisher,
      fallbackSubject: syncFallbackSubject(ref),
      metrics: this.d.metrics,
      clock: this.d.clock,
      logger: log,
      runId,
      scheduled,
      signal,
      hashCache: {
        take: () => {
          const prefix = syncRunsKeyPrefix(ref);
          const c = this.hashCaches.get(prefix);
          this.hashCaches.delete(prefix);
          return c?.uid === uid ? c : undefined;
        },
        put: (version, hashes) => {
          this.hashCaches.set(syncRunsKeyPrefix(ref), { uid, version, hashes });
        },
      },
    });
    log.info({ scheduled }, 'sync run started');
    await runner.run();
  }
}
