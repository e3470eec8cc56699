/**
 * The shared rate of an Integration under 429s: AIMD (multiplicative decrease, additive
 * increase). A 429 anywhere halves the rate and sets `limitedUntil`; after that, the rate climbs
 * back by a fixed step per interval up to the configured rate.
 *
 * The state is three numbers that a replica writes to KV and every replica adopts; recovery is
 * computed from the state and the clock, not by timers, so all replicas agree on the current rate
 * without writing again. Pure: no I/O, no timers.
 */
import type { Clock } from '../observability/index.ts';
import { DeliveryConfigError } from './errors.ts';

/** What KV holds and `status.throttle` shows. */
export interface ThrottleState {
  /** The rate (for all replicas together) set by the last decrease. */
  readonly perSecond: number;
  /** Until when the lowered rate holds before recovery starts (ms since the epoch). */
  readonly limitedUntil: number;
  /** When the last decrease happened; 429s within `cooldownMs` of it do not lower the rate again. */
  readonly decreasedAt: number;
}

/** The configured rate and the AIMD knobs; every knob has a default that suits a 429-ing API. */
export interface ThrottlePolicy {
  /** `spec.delivery.rateLimit.perSecond`: the rate to recover to. */
  readonly perSecond: number;
  /** Factor applied on a 429 (0 < f < 1). Default 0.5. */
  readonly decreaseFactor?: number;
  /** Floor of the lowered rate. Default 1% of `perSecond`. */
  readonly minPerSecond?: number;
  /** Rate added per `recoveryIntervalMs` once `limitedUntil` has passed. Default 10% of `perSecond`. */
  readonly recoveryStep?: number;
  /** Default 1 s. */
  readonly recoveryIntervalMs?: number;
  /**
   * 429s that arrive within this long of a decrease only extend `limitedUntil`: many in-flight
   * requests hitting the same limit at once are one signal, not many. Default 1 s.
   */
  readonly cooldownMs?: number;
  /** How long the lowered rate holds when a 429 carries no Retry-After. Default 1 s. */
  readonly defaultHoldMs?: number;
}

/** The result of reporting a throttle. */
export interface ThrottleUpdate {
  /** The state to publish to the other replicas. */
  readonly state: ThrottleState;
  /** False when the 429 fell within the cooldown and only extended `limitedUntil`. */
  readonly decreased: boolean;
}

/**
 * Tracks the shared rate of one Integration. The runtime reports throttles with `onThrottle`,
 * publishes the returned state, adopts states published by others with `adopt`, and sets its
 * token bucket to `perReplicaShare(currentRate(), runners)` — runners being the replicas that run
 * the Integration, not every live replica.
 */
export class ThrottleController {
  private readonly clock: Clock;
  private readonly configured: number;
  private readonly factor: number;
  private readonly floor: number;
  private readonly step: number;
  private readonly intervalMs: number;
  private readonly cooldownMs: number;
  private readonly defaultHoldMs: number;
  private shared: ThrottleState | undefined;

  /** @throws DeliveryConfigError when the policy cannot work. */
  constructor(policy: ThrottlePolicy, clock: Clock) {
    const p = policy.perSecond;
    if (!(Number.isFinite(p) && p > 0)) throw new DeliveryConfigError('rateLimit.perSecond', 'must be > 0');
    const factor = policy.decreaseFactor ?? 0.5;
    if (!(factor > 0 && factor < 1)) throw new DeliveryConfigError('throttle.decreaseFactor', 'must be in (0, 1)');
    this.clock = clock;
    this.configured = p;
    this.factor = factor;
    this.floor = Math.min(p, policy.minPerSecond ?? p / 100);
    this.step = policy.recoveryStep ?? p / 10;
    this.intervalMs = policy.recoveryIntervalMs ?? 1000;
    this.cooldownMs = policy.cooldownMs ?? 1000;
    this.defaultHoldMs = policy.defaultHoldMs ?? 1000;
    if (!(this.floor > 0 && this.step > 0 && this.intervalMs > 0)) {
      throw new DeliveryConfigError('throttle', 'minPerSecond, recoveryStep and recoveryIntervalMs must be > 0');
    }
  }

  /** The rate all replicas together may use now: lowered, recovering, or the configured rate. */
  currentRate(): number {
    return this.rateAt(this.clock.now());
  }

  /** The throttle in force, or `undefined` once the rate has fully recovered. */
  state(): ThrottleState | undefined {
    return this.rateAt(this.clock.now()) < this.configured ? this.shared : undefined;
  }

  /**
   * Reports a throttle (429, or 503 with Retry-After) seen by this replica. Outside the cooldown
   * the current rate is multiplied by `decreaseFactor` (not below the floor); inside it only
   * `limitedUntil` moves. `retryAfterMs` (already capped by `retryAfterMax`) sets how long the
   * lowered rate holds.
   */
  onThrottle(retryAfterMs?: number): ThrottleUpdate {
    const now = this.clock.now();
    const holdUntil = now + (retryAfterMs ?? this.defaultHoldMs);
    const previous = this.shared;
    if (previous && now - previous.decreasedAt < this.cooldownMs) {
      this.shared = { ...previous, limitedUntil: Math.max(previous.limitedUntil, holdUntil) };
      return { state: this.shared, decreased: false };
    }
    const perSecond = Math.max(this.floor, this.rateAt(now) * this.factor);
    this.shared = { perSecond, limitedUntil: Math.max(previous?.limitedUntil ?? 0, holdUntil), decreasedAt: now };
    return { state: this.shared, decreased: true };
  }

  /** Takes over the state another replica published (`undefined`: no throttle in force). */
  adopt(state: ThrottleState | undefined): void {
    this.shared = state;
  }

  private rateAt(now: number): number {
    const s = this.shared;
    if (!s) return this.configured;
    if (now < s.limitedUntil) return Math.min(this.configured, s.perSecond);
    const steps = Math.floor((now - s.limitedUntil) / this.intervalMs);
    return Math.min(this.configured, s.perSecond + steps * this.step);
  }
}

/**
 * One replica's share of a rate shared by `members` replicas (those that run the Integration, from
 * the runtime's assignment over the membership bucket). With none known a replica assumes it is
 * alone.
 */
export function perReplicaShare(perSecond: number, members: number): number {
  return perSecond / Math.max(1, Math.floor(members));
}
