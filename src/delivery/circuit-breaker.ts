/**
 * The circuit breaker of one target (one Integration): a pure state machine over an injected
 * clock. It does no I/O; it reports every transition to a callback so the runtime can pause the
 * JetStream consumer, write the shared state to KV and emit a Kubernetes Event.
 *
 * Expected flow: the runtime asks `tryAcquire()` before each attempt and reports the attempt's
 * {@link BreakerVerdict} with `record()`. Closed admits everything; `failures` failures within
 * `windowMs` open it. Open admits nothing until `openForMs` has passed, then becomes HalfOpen,
 * which admits exactly one probe: its success closes the breaker, its failure opens it again, a
 * neutral result (429) frees the slot for another probe.
 *
 * Caveats: time-driven transitions (Open → HalfOpen) happen when the breaker is next consulted
 * (`tryAcquire`, `snapshot`, `refresh`); the runtime schedules a `refresh()` at `openUntil` if it
 * wants the event on time. Across replicas the runtime `adopt()`s the state another replica
 * wrote to KV.
 */
import type { Clock } from '../observability/index.ts';
import type { BreakerVerdict } from './classify.ts';
import { DeliveryConfigError } from './errors.ts';

/** The three states of a breaker, spelled as `status.circuit.state` shows them. */
export type CircuitState = 'Closed' | 'Open' | 'HalfOpen';

/** What `status.circuit` shows and what KV holds. */
export interface CircuitSnapshot {
  readonly state: CircuitState;
  /** When the breaker entered `state` (ms since the epoch). */
  readonly since: number;
  /** Failures since the last success; informational (opening uses the sliding window). */
  readonly consecutiveFailures: number;
  /** While Open: when it turns HalfOpen. */
  readonly openUntil: number | undefined;
}

/**
 * Why a transition happened. `adopted`: another replica's state was taken over; `reset`: the
 * cause of the failures was fixed (new credentials), so the breaker closed without a probe.
 */
export type TransitionReason = 'failures' | 'probe-failed' | 'probe-succeeded' | 'open-elapsed' | 'adopted' | 'reset';

/** One state change, reported to `onTransition`. */
export interface CircuitTransition {
  readonly key: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: TransitionReason;
  readonly at: number;
  readonly snapshot: CircuitSnapshot;
}

/** A resolved `spec.delivery.circuitBreaker`. */
export interface CircuitBreakerPolicy {
  /** Failures within `windowMs` that open the breaker (≥ 1). */
  readonly failures: number;
  readonly windowMs: number;
  /** How long the breaker stays Open before admitting a probe. */
  readonly openForMs: number;
  /**
   * A probe not reported within this long is presumed lost (its worker died) and another is
   * admitted. Default: `openForMs`.
   */
  readonly probeTimeoutMs?: number;
}

/** The policy plus what a breaker needs to run: its name, a clock and a transition listener. */
export interface CircuitBreakerOptions extends CircuitBreakerPolicy {
  /** Names the breaker in transitions (e.g. `revops/deal-to-invoice`). */
  readonly key: string;
  readonly clock: Clock;
  /**
   * Called synchronously on every transition, after the state changed. It must not throw; the
   * runtime does its I/O asynchronously from here.
   */
  readonly onTransition?: (transition: CircuitTransition) => void;
}

/** A circuit breaker; one per target. Not shared across processes (see `adopt`). */
export class CircuitBreaker {
  readonly key: string;
  private readonly policy: Required<CircuitBreakerPolicy>;
  private readonly clock: Clock;
  private readonly onTransition: ((transition: CircuitTransition) => void) | undefined;
  private state: CircuitState = 'Closed';
  private since: number;
  private consecutiveFailures = 0;
  private openUntil: number | undefined;
  /** Times of the most recent failures, oldest first, at most `policy.failures` of them. */
  private recentFailures: number[] = [];
  /** While HalfOpen: when the outstanding probe was admitted. */
  private probeSince: number | undefined;

  /** @throws DeliveryConfigError when the policy cannot work. */
  constructor(options: CircuitBreakerOptions) {
    if (!(Number.isInteger(options.failures) && options.failures >= 1)) {
      throw new DeliveryConfigError('circuitBreaker.failures', 'must be an integer ≥ 1');
    }
    for (const [name, value] of [
      ['window', options.windowMs],
      ['openFor', options.openForMs],
    ] as const) {
      if (!(Number.isFinite(value) && value > 0)) {
        throw new DeliveryConfigError(`circuitBreaker.${name}`, 'must be a positive duration');
      }
    }
    this.key = options.key;
    this.policy = {
      failures: options.failures,
      windowMs: options.windowMs,
      openForMs: options.openForMs,
      probeTimeoutMs: options.probeTimeoutMs ?? options.openForMs,
    };
    this.clock = options.clock;
    this.onTransition = options.onTransition;
    this.since = options.clock.now();
  }

  /** True when Closed: an attempt may go without reserving anything (cheap, no allocation). */
  get closed(): boolean {
    return this.state === 'Closed';
  }

  /** The current state, after applying any time-driven transition. */
  snapshot(): CircuitSnapshot {
    this.refresh();
    return this.current();
  }

  /**
   * Applies time-driven transitions: an Open breaker whose `openUntil` has passed becomes
   * HalfOpen (reported with reason `open-elapsed`).
   */
  refresh(): void {
    const now = this.clock.now();
    if (this.state === 'Open' && this.openUntil !== undefined && now >= this.openUntil) {
      this.probeSince = undefined;
      this.transition('HalfOpen', 'open-elapsed', now);
    }
  }

  /**
   * Asks to make one attempt. Closed: always true. Open: false. HalfOpen: true for exactly one
   * caller until that probe is reported with `record()` (or times out). A caller that got `true`
   * must report the attempt's verdict with `record()`.
   */
  tryAcquire(): boolean {
    this.refresh();
    if (this.state === 'Closed') return true;
    if (this.state === 'Open') return false;
    const now = this.clock.now();
    if (this.probeSince !== undefined && now - this.probeSince < this.policy.probeTimeoutMs) return false;
    this.probeSince = now;
    return true;
  }

  /** Reports the verdict of an attempt admitted by `tryAcquire()`. */
  record(verdict: BreakerVerdict): void {
    this.refresh();
    const now = this.clock.now();
    if (verdict === 'neutral') {
      if (this.state === 'HalfOpen') this.probeSince = undefined;
      return;
    }
    if (verdict === 'success') {
      this.consecutiveFailures = 0;
      this.recentFailures = [];
      if (this.state === 'HalfOpen') {
        this.probeSince = undefined;
        this.transition('Closed', 'probe-succeeded', now);
      }
      return;
    }
    this.consecutiveFailures++;
    if (this.state === 'HalfOpen') {
      this.open('probe-failed', now);
      return;
    }
    if (this.state === 'Open') return; // a straggler admitted before the breaker opened
    this.recentFailures.push(now);
    if (this.recentFailures.length > this.policy.failures) this.recentFailures.shift();
    const oldest = this.recentFailures[0];
    if (
      this.recentFailures.length >= this.policy.failures &&
      oldest !== undefined &&
      now - oldest < this.policy.windowMs
    ) {
      this.open('failures', now);
    }
  }

  /**
   * Closes the breaker at once and forgets its failures: what made the target fail is known to be
   * fixed (its credentials were replaced), so waiting for `openFor` and a probe would only delay
   * delivery. A no-op when already Closed with no recent failures.
   */
  reset(): void {
    this.consecutiveFailures = 0;
    this.recentFailures = [];
    this.probeSince = undefined;
    this.openUntil = undefined;
    if (this.state !== 'Closed') this.transition('Closed', 'reset', this.clock.now());
  }

  /**
   * Takes over the state another replica wrote to shared storage (KV), reporting it as an
   * `adopted` transition if the state differs, so the runtime does not write it back.
   * A Closed snapshot clears the local failure window.
   */
  adopt(snapshot: CircuitSnapshot): void {
    const changed = snapshot.state !== this.state;
    this.consecutiveFailures = snapshot.consecutiveFailures;
    this.openUntil = snapshot.state === 'Open' ? snapshot.openUntil : undefined;
    if (snapshot.state !== 'HalfOpen') this.probeSince = undefined;
    if (snapshot.state === 'Closed') this.recentFailures = [];
    if (changed) this.transition(snapshot.state, 'adopted', snapshot.since);
    else this.since = snapshot.since;
  }

  private open(reason: TransitionReason, now: number): void {
    this.openUntil = now + this.policy.openForMs;
    this.probeSince = undefined;
    this.recentFailures = [];
    this.transition('Open', reason, now);
  }

  private transition(to: CircuitState, reason: TransitionReason, at: number): void {
    const from = this.state;
    this.state = to;
    this.since = at;
    if (to !== 'Open') this.openUntil = undefined;
    this.onTransition?.({ key: this.key, from, to, reason, at, snapshot: this.current() });
  }

  private current(): CircuitSnapshot {
    return {
      state: this.state,
      since: this.since,
      consecutiveFailures: this.consecutiveFailures,
      openUntil: this.openUntil,
    };
  }
}
