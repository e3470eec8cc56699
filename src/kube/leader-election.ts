/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics.
 *
 * Expected flow: every replica runs `elector.start(signal, callbacks)`. One of them acquires the
 * Lease and gets `onStartedLeading(leaderSignal)`; it renews every `retryPeriodMs`. The others
 * poll every `retryPeriodMs` (jittered) and take over once the Lease has expired.
 *
 * Guarantees:
 * - Expiry is judged by when THIS process last saw the Lease record change (as client-go does),
 *   never by comparing our clock with the timestamps another process wrote: clock skew between
 *   nodes does not matter, only the rate at which clocks advance.
 * - Writes are optimistic: an update carries the resourceVersion read, so of two candidates only
 *   one wins (the other gets 409 and tries again later).
 * - A leader that cannot renew within `renewDeadlineMs` (shorter than the lease duration), or that
 *   sees another holder, stops leading: `leaderSignal` aborts, the `onStartedLeading` promise is
 *   awaited, then `onStoppedLeading()` runs and `start` resolves `'lost'`.
 * - On a graceful stop (`signal` aborts) with `releaseOnCancel` (default), leader work is stopped
 *   and awaited FIRST, then the Lease is released (holder cleared, duration 1 s, as client-go's
 *   ReleaseOnCancel) so a standby takes over within one retry period, not a lease duration.
 *
 * Assumptions: clocks of all replicas advance at roughly the same rate; `renewDeadlineMs` is
 * comfortably below `leaseDurationMs`.
 *
 * Caveats: as with any lease, a paused process (GC, SIGSTOP) can believe it leads for up to
 * `renewDeadlineMs` after it stopped renewing. Leader work must tolerate a short overlap.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock, Gauge, Logger, Registry } from '../observability/index.ts';
import { scopedSignal } from './abort.ts';
import { AlreadyExistsError, ConflictError, KubeConfigError, toError } from './errors.ts';
import {
  KubeLeaseClient,
  decideLease,
  observe,
  releaseRecord,
  renewDeadlinePassed,
  type LeaseClient,
  type LeaseSnapshot,
  type Observation,
} from './lease.ts';
import { gauge } from './metrics.ts';

/** client-go's JitterFactor for the candidates' retry period. */
const JITTER_FACTOR = 1.2;

export interface LeaderCallbacks {
  /**
   * Called once leadership is acquired. Do leader work until `signal` aborts; the returned
   * promise is awaited before the Lease is released, so no leader work outlives the leadership.
   */
  onStartedLeading?(signal: AbortSignal): Promise<void> | void;
  /** Called after leadership ended (lost or released) and leader work has returned. */
  onStoppedLeading?(): void;
  /** Called when the observed holder changes (including to ourselves). */
  onNewLeader?(identity: string): void;
}

export interface LeaderElectorOptions {
  /** Where the Lease lives. */
  readonly lease: { readonly namespace: string; readonly name: string };
  /** Unique per replica, e.g. the pod name. */
  readonly identity: string;
  /** Used to build a {@link KubeLeaseClient} unless `leaseClient` is given. */
  readonly kubeConfig?: KubeConfig;
  /** Storage for the Lease; tests pass an in-memory one. */
  readonly leaseClient?: LeaseClient;
  /** How long a non-renewed lease stays valid; whole seconds; default 15 s. */
  readonly leaseDurationMs?: number;
  /** A leader gives up when it could not renew for this long; default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Between renewals and acquisition attempts; default 2 s. */
  readonly retryPeriodMs?: number;
  /** Release the Lease on a graceful stop; default true. */
  readonly releaseOnCancel?: boolean;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Randomness for the retry jitter, in [0, 1). */
  readonly random?: () => number;
}

/** How `start` ended: `stopped` after `signal` aborted, `lost` when leadership was lost. */
export type LeaderElectionEnd = 'stopped' | 'lost';

/**
 * One replica's candidate for a Lease (see the file header). Construct it (no I/O; throws
 * `KubeConfigError` for timings that break client-go's rules), then `start(signal, callbacks)`.
 */
export class LeaderElector {
  readonly identity: string;
  private readonly client: LeaseClient;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly releaseOnCancel: boolean;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly status: Gauge<'name'>;
  private readonly leaseName: string;
  private observation: Observation | undefined;
  /** Our last successful write, used for renewals' and the release's optimistic update. */
  private lastWrite: LeaseSnapshot | undefined;
  private leading = false;
  private running = false;
  private observedHolder = '';

  constructor(options: LeaderElectorOptions) {
    const leaseDurationMs = options.leaseDurationMs ?? 15_000;
    const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    const retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!options.identity) throw new KubeConfigError('leader election needs a non-empty identity');
    if (leaseDurationMs < 1000 || leaseDurationMs % 1000 !== 0) {
      throw new KubeConfigError('leaseDurationMs must be a whole number of seconds (the Lease stores seconds)');
    }
    if (leaseDurationMs <= renewDeadlineMs) throw new KubeConfigError('leaseDurationMs must be greater than renewDeadlineMs');
    if (retryPeriodMs <= 0 || renewDeadlineMs <= JITTER_FACTOR * retryPeriodMs) {
      throw new KubeConfigError('renewDeadlineMs must be greater than 1.2 × retryPeriodMs (client-go’s rule)');
    }
    this.identity = options.identity;
    if (options.leaseClient) this.client = options.leaseClient;
    else if (options.kubeConfig) {
      this.client = new KubeLeaseClient({ kubeConfig: options.kubeConfig, ...options.lease, clock: options.clock });
    } else throw new KubeConfigError('leader election needs kubeConfig or leaseClient');
    this.leaseDurationSeconds = leaseDurationMs / 1000;
    this.renewDeadlineMs = renewDeadlineMs;
    this.retryPeriodMs = retryPeriodMs;
    this.releaseOnCancel = options.releaseOnCancel ?? true;
    this.clock = options.clock;
    this.random = options.random ?? Math.random;
    this.leaseName = options.lease.name;
    this.logger = options.logger.child({ lease: `${options.lease.namespace}/${options.lease.name}`, identity: options.identity });
    // client-go's leader-election metric name, so existing dashboards work.
    this.status = gauge(options.registry, {
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.',
      labelNames: ['name'],
    });
    this.status.set({ name: this.leaseName }, 0);
  }

  /** True between acquiring leadership and the moment it ends (before leader work is awaited). */
  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder we last observed ('' if none or unknown). */
  get leader(): string {
    return this.observedHolder;
  }

  /**
   * Campaigns until elected, leads until `signal` aborts or leadership is lost, and resolves
   * with which of the two happened. Never rejects for API failures (they are retried or, for a
   * leader, end in `'lost'`). One term per call: after `'lost'` the caller decides (usually: exit).
   */
  async start(signal: AbortSignal, callbacks: LeaderCallbacks = {}): Promise<LeaderElectionEnd> {
    if (this.running) throw new Error('leader elector is already running');
    this.running = true;
    try {
      if (!(await this.acquire(signal, callbacks))) return 'stopped';
      return await this.lead(signal, callbacks);
    } finally {
      this.running = false;
    }
  }

  private async acquire(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<boolean> {
    this.logger.info('campaigning for leadership');
    while (!signal.aborted) {
      const result = await this.tryAcquireOrRenew(signal, this.renewDeadlineMs, callbacks);
      if (result === 'ok') return true;
      const wait = this.retryPeriodMs * (1 + JITTER_FACTOR * this.random());
      try {
        await this.clock.sleep(wait, signal);
      } catch {
        return false;
      }
    }
    return false;
  }

  private async lead(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<LeaderElectionEnd> {
    this.leading = true;
    this.status.set({ name: this.leaseName }, 1);
    this.logger.info('acquired leadership');
    const leaderController = new AbortController();
    const work = (async () => {
      await callbacks.onStartedLeading?.(leaderController.signal);
    })().catch((err: unknown) => {
      this.logger.error({ err: toError(err) }, 'leader work failed');
    });

    let lastRenew = this.clock.now();
    let end: LeaderElectionEnd = 'stopped';
    while (!signal.aborted) {
      try {
        await this.clock.sleep(this.retryPeriodMs, signal);
      } catch {
        break;
      }
      const remaining = lastRenew + this.renewDeadlineMs - this.clock.now();
      const result = await this.tryAcquireOrRenew(signal, Math.max(1, remaining), callbacks);
      if (result === 'aborted') break;
      const now = this.clock.now();
      if (result === 'ok') {
        lastRenew = now;
        continue;
      }
      if (result === 'held') {
        this.logger.error({ holder: this.observedHolder }, 'another replica holds the lease; leadership lost');
        end = 'lost';
        break;
      }
      if (renewDeadlinePassed(lastRenew, now, this.renewDeadlineMs)) {
        this.logger.error({ sinceLastRenewMs: now - lastRenew }, 'could not renew the lease within the renew deadline; leadership lost');
        end = 'lost';
        break;
      }
    }

    this.leading = false;
    this.status.set({ name: this.leaseName }, 0);
    leaderController.abort(new Error(end === 'lost' ? 'leadership lost' : 'leader election stopped'));
    await work;
    if (end === 'stopped' && this.releaseOnCancel) await this.release();
    this.logger.info({ end }, 'stopped leading');
    try {
      callbacks.onStoppedLeading?.();
    } catch (err) {
      this.logger.error({ err: toError(err) }, 'onStoppedLeading threw');
    }
    return end;
  }

  /** One read-decide-write round. 'held': another holder has a valid lease; 'aborted': `outer` aborted. */
  private async tryAcquireOrRenew(
    outer: AbortSignal,
    timeoutMs: number,
    callbacks: LeaderCallbacks,
  ): Promise<'ok' | 'held' | 'failed' | 'aborted'> {
    const scope = scopedSignal(this.clock, timeoutMs, () => new Error('lease request timed out'), outer);
    const signal = scope.signal;
    const now = this.clock.now();
    try {
      const current = await this.client.get(signal);
      if (current) {
        this.observation = observe(this.observation, current.record, now);
        this.noteHolder(current.record.holderIdentity ?? '', callbacks);
      }
      const decision = decideLease({
        identity: this.identity,
        current: current?.record,
        observation: this.observation,
        now,
        leaseDurationSeconds: this.leaseDurationSeconds,
      });
      let written: LeaseSnapshot;
      switch (decision.kind) {
        case 'held':
          this.logger.debug({ holder: decision.holder, expiresInMs: decision.expiresAt - now }, 'lease held by another replica');
          return 'held';
        case 'create':
          written = await this.client.create(decision.record, signal);
          break;
        case 'update':
          if (!current) throw new Error('unreachable: update without a current lease');
          written = await this.client.update(decision.record, current, signal);
          if (decision.takeover) this.logger.info({ previousHolder: current.record.holderIdentity ?? '' }, 'took over the lease');
          break;
      }
      this.lastWrite = written;
      this.observation = { record: written.record, at: now };
      this.noteHolder(this.identity, callbacks);
      return 'ok';
    } catch (err) {
      if (outer.aborted) return 'aborted';
      // Losing a race to another candidate is routine; anything else is worth a warning.
      const level = err instanceof ConflictError || err instanceof AlreadyExistsError ? 'debug' : 'warn';
      this.logger[level]({ err: toError(err) }, 'could not acquire or renew the lease');
      return 'failed';
    } finally {
      scope.dispose();
    }
  }

  private noteHolder(holder: string, callbacks: LeaderCallbacks): void {
    if (holder === this.observedHolder) return;
    this.observedHolder = holder;
    if (holder === '') return;
    this.logger.info({ holder }, 'new leader observed');
    try {
      callbacks.onNewLeader?.(holder);
    } catch (err) {
      this.logger.error({ err: toError(err) }, 'onNewLeader threw');
    }
  }

  /** Clears the holder so a standby can take over at once. Best effort: failures are logged. */
  private async release(): Promise<void> {
    const last = this.lastWrite;
    if (!last || last.record.holderIdentity !== this.identity) return;
    const scope = scopedSignal(this.clock, this.renewDeadlineMs, () => new Error('lease release timed out'));
    try {
      const written = await this.client.update(releaseRecord(last.record, this.clock.now()), last, scope.signal);
      this.lastWrite = written;
      this.observation = { record: written.record, at: this.clock.now() };
      this.observedHolder = '';
      this.logger.info('released the lease');
    } catch (err) {
      // A conflict means someone wrote after our last renewal: the lease is no longer ours.
      this.logger.warn({ err: toError(err) }, 'could not release the lease');
    } finally {
      scope.dispose();
    }
  }
}
