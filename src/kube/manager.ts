/**
 * Starts and stops the long-lived parts of the operator in a fixed order (controller-runtime's
 * manager).
 *
 * Expected flow: the composition root `add`s runnables to groups, then awaits
 * `manager.start(signal)` and exits the process with a code derived from the {@link ManagerExit}.
 *
 * Guarantees:
 * - Start order: `http` (health, metrics) → `caches` (watchers; the manager waits until each is
 *   `ready`: synced, or known not to be served) → `others` (work every replica does) → `leader` (controllers), the
 *   last only while this replica holds the Lease (or at once, without leader election).
 * - Stop order is the reverse, each group awaited before the previous one is stopped, so
 *   controllers never run against stopped caches and health endpoints answer until the end.
 * - Leadership lost: leader runnables are stopped, then everything else, and `start` resolves
 *   `{ reason: 'leadership-lost' }`: the process should exit, as controller-runtime's does,
 *   rather than keep running with state built for a term that is over.
 * - A runnable that rejects stops the manager (`{ reason: 'failed', error }`).
 * - Leader work that has not returned `gracefulShutdownMs` after its term ended is named in an
 *   error line and stops the manager (`failed`): it would otherwise block every later term.
 * - Stopping is bounded: all groups together get `gracefulShutdownMs`; a group still running
 *   when that budget is spent is abandoned, logged, and reported in `ManagerExit.timedOut`, and
 *   the groups after it are still stopped (each gets whatever is left, at least a moment).
 */
import { untilAborted, type Clock, type Logger } from '../observability/index.ts';
import { toError } from './errors.ts';
import type { LeaderCallbacks, LeaderElectionEnd } from './leader-election.ts';

/** A long-lived part. */
export interface Runnable {
  readonly name: string;
  /** Runs until `signal` aborts and resolves once fully stopped. Rejecting means it failed. */
  start(signal: AbortSignal): Promise<void>;
  /**
   * Resolves when the runnable can serve (server listening, cache synced). The manager waits
   * for it before starting the next group. Rejects only when `signal` aborts.
   */
  ready?(signal: AbortSignal): Promise<void>;
}

export type RunnableGroup = 'http' | 'caches' | 'others' | 'leader';

const ORDER: readonly RunnableGroup[] = ['http', 'caches', 'others', 'leader'];

/** What a group gets to stop once the shutdown budget is spent. */
const MIN_STOP_MS = 100;

/** What the manager needs of a leader elector; {@link LeaderElector} satisfies it. */
export interface LeaderElection {
  start(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<LeaderElectionEnd>;
}

export type ManagerExit =
  | { readonly reason: 'stopped'; readonly timedOut: readonly string[] }
  | { readonly reason: 'leadership-lost'; readonly timedOut: readonly string[] }
  | { readonly reason: 'failed'; readonly error: Error; readonly runnable: string; readonly timedOut: readonly string[] };

export interface ManagerOptions {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Without it, leader runnables start at once (a single replica, or tests). */
  readonly leaderElection?: LeaderElection;
  /** How long stopping every group may take in total; default 30 s. */
  readonly gracefulShutdownMs?: number;
  /**
   * What losing the Lease does: `exit` (controller-runtime's choice: stop everything, the pod
   * restarts) or `recampaign`: stop only the leader runnables and campaign again, so work every
   * replica does (caches, the delivery runtime) is not interrupted by a slow renewal. Default exit.
   */
  readonly onLeadershipLost?: 'exit' | 'recampaign';
}

interface Running {
  readonly name: string;
  readonly done: Promise<void>;
  /** Set once `done` settled. */
  settled: boolean;
}

type Stop = { readonly reason: 'signal' } | { readonly reason: 'leadership-lost' } | { readonly reason: 'failed'; readonly error: Error; readonly runnable: string };

/**
 * Owns the lifecycle of the operator's runnables (see the file header). `add` them, then
 * `start(signal)` once; it resolves with why it stopped.
 */
export class Manager {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly election: LeaderElection | undefined;
  private readonly gracefulShutdownMs: number;
  private readonly onLeadershipLost: 'exit' | 'recampaign';
  private readonly groups = new Map<RunnableGroup, Runnable[]>(ORDER.map((g) => [g, []]));
  private started = false;
  private readyFlag = false;

  constructor(options: ManagerOptions) {
    this.logger = options.logger.child({ component: 'manager' });
    this.clock = options.clock;
    this.election = options.leaderElection;
    this.gracefulShutdownMs = options.gracefulShutdownMs ?? 30_000;
    this.onLeadershipLost = options.onLeadershipLost ?? 'exit';
  }

  /** Registers a runnable; only before `start`. */
  add(runnable: Runnable, group: RunnableGroup): void {
    if (this.started) throw new Error('Manager.add after start');
    this.groups.get(group)?.push(runnable);
  }

  /**
   * True once the caches are synced and the non-leader runnables started; false again when
   * stopping. For a readiness probe.
   */
  get ready(): boolean {
    return this.readyFlag;
  }

  /** Runs everything until `signal` aborts, leadership is lost or a runnable fails; see the file header. */
  async start(signal: AbortSignal): Promise<ManagerExit> {
    if (this.started) throw new Error('Manager.start called twice');
    this.started = true;

    let resolveStop: (stop: Stop) => void = () => {};
    const stopRequested = new Promise<Stop>((resolve) => {
      resolveStop = resolve;
    });
    const state = { stopped: false };
    const requestStop = (stop: Stop): void => {
      if (state.stopped) return;
      state.stopped = true;
      resolveStop(stop);
    };
    const onAbort = (): void => {
      requestStop({ reason: 'signal' });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();

    // One controller per group: stopping a group aborts exactly its runnables.
    const controllers = new Map<RunnableGroup, AbortController>(ORDER.map((g) => [g, new AbortController()]));
    const running = new Map<RunnableGroup, Running[]>(ORDER.map((g) => [g, []]));
    const startupAbort = new AbortController();
    // Rejects when a stop is requested: waiting for readiness never outlasts a stop, even for a
    // runnable whose ready() ignores its signal.
    const stopping = stopRequested.then(() => {
      startupAbort.abort(new Error('manager stopping'));
      throw new Error('manager stopping');
    });
    stopping.catch(() => undefined);

    const launch = (group: RunnableGroup, runnable: Runnable, groupSignal: AbortSignal): void => {
      this.logger.info({ runnable: runnable.name, group }, 'starting runnable');
      const done = (async () => {
        await runnable.start(groupSignal);
      })().then(
        () => {
          if (!groupSignal.aborted) this.logger.warn({ runnable: runnable.name, group }, 'runnable returned before it was stopped');
        },
        (err: unknown) => {
          const error = toError(err);
          this.logger.error({ runnable: runnable.name, group, err: error }, 'runnable failed');
          requestStop({ reason: 'failed', error, runnable: runnable.name });
        },
      );
      const entry: Running = { name: runnable.name, done, settled: false };
      void done.finally(() => {
        entry.settled = true;
      });
      running.get(group)?.push(entry);
    };

    // Start the groups before the leader group, each after the previous is ready.
    try {
      for (const group of ORDER.slice(0, -1)) {
        const groupSignal = this.signalOf(controllers, group);
        const runnables = this.groups.get(group) ?? [];
        for (const r of runnables) launch(group, r, groupSignal);
        await Promise.race([Promise.all(runnables.map((r) => (r.ready ? r.ready(startupAbort.signal) : Promise.resolve()))), stopping]);
        this.logger.info({ group }, 'group ready');
      }
      this.readyFlag = true;
    } catch {
      // startupAbort fired: a stop was requested while waiting for readiness.
    }

    let electionDone: Promise<void> | undefined;
    if (!state.stopped) {
      const leaderRunnables = this.groups.get('leader') ?? [];
      const election = this.election;
      if (election) {
        const electionSignal = this.signalOf(controllers, 'leader');
        const campaign = (): Promise<void> =>
          election
            .start(electionSignal, {
              onStartedLeading: async (leaderSignal) => {
                // A fresh list per term: the previous term's runnables have all returned.
                running.set('leader', []);
                for (const r of leaderRunnables) launch('leader', r, leaderSignal);
                // The elector awaits this before releasing the Lease: leader work must be over.
                const term = running.get('leader') ?? [];
                const over = Promise.all(term.map((r) => r.done));
                await untilAborted(over, leaderSignal);
                if (await this.within(over, this.gracefulShutdownMs)) return;
                // Leader work that outlives its term would run beside the next leader's: this
                // process cannot lead again safely, so it ends and the Deployment restarts it.
                const stuck = term.filter((r) => !r.settled).map((r) => r.name);
                this.logger.error({ runnables: stuck, waitedMs: this.gracefulShutdownMs }, 'leader work did not stop when the term ended; stopping the process');
                requestStop({ reason: 'failed', error: new Error(`leader runnables did not stop: ${stuck.join(', ')}`), runnable: stuck.join(', ') });
              },
            })
            .then(
              async (end) => {
                if (end !== 'lost' || state.stopped) return;
                if (this.onLeadershipLost === 'exit') {
                  requestStop({ reason: 'leadership-lost' });
                  return;
                }
                this.logger.warn('leadership lost; leader work stopped, campaigning again');
                await campaign();
              },
              (err: unknown) => {
                requestStop({ reason: 'failed', error: toError(err), runnable: 'leader-election' });
              },
            );
        electionDone = campaign();
      } else {
        const leaderSignal = this.signalOf(controllers, 'leader');
        for (const r of leaderRunnables) launch('leader', r, leaderSignal);
      }
    }

    const stop = await stopRequested;
    signal.removeEventListener('abort', onAbort);
    this.readyFlag = false;
    this.logger.info({ reason: stop.reason }, 'stopping');

    const timedOut: string[] = [];
    const deadline = this.clock.now() + this.gracefulShutdownMs;
    for (const group of [...ORDER].reverse()) {
      controllers.get(group)?.abort(new Error('manager stopping'));
      const waits = (running.get(group) ?? []).map((r) => r.done);
      if (group === 'leader' && electionDone) waits.push(electionDone);
      // A group that stops promptly (health endpoints) still gets a moment when a stuck group
      // before it spent the budget.
      const left = Math.max(deadline - this.clock.now(), MIN_STOP_MS);
      if (!(await this.within(Promise.all(waits), left))) {
        const names = (running.get(group) ?? []).map((r) => r.name);
        this.logger.error({ group, runnables: names }, 'group did not stop in time; abandoning it');
        timedOut.push(...names);
      }
    }
    this.logger.info({ reason: stop.reason }, 'stopped');
    switch (stop.reason) {
      case 'signal':
        return { reason: 'stopped', timedOut };
      case 'leadership-lost':
        return { reason: 'leadership-lost', timedOut };
      case 'failed':
        return { reason: 'failed', error: stop.error, runnable: stop.runnable, timedOut };
    }
  }

  private signalOf(controllers: Map<RunnableGroup, AbortController>, group: RunnableGroup): AbortSignal {
    const controller = controllers.get(group);
    if (!controller) throw new Error(`unknown group ${group}`);
    return controller.signal;
  }

  /** Resolves true if `p` settles within `ms` on the clock, false otherwise. */
  private async within(p: Promise<unknown>, ms: number): Promise<boolean> {
    let cancel = (): void => {};
    const timer = new Promise<false>((resolve) => {
      cancel = this.clock.setTimer(() => {
        resolve(false);
      }, ms);
    });
    try {
      return await Promise.race([p.then(() => true), timer]);
    } finally {
      cancel();
    }
  }
}
