/**
 * One redrive run on the replica that holds it: reads the selected parked messages by sequence,
 * replays each through the Integration's running generation with its original idempotency key,
 * and records every outcome in the shared record before touching the fallback stream.
 *
 * Expected flow: the runner took (or took over) the record with compare-and-set and calls `run`.
 * Guarantees:
 * - A message is delivered at most once per key: its key is the one its first attempts used
 *   (`Ferry-Idempotency-Key`), so a target that honours keys applies it once even when a holder
 *   dies after the delivery and the next holder sends it again.
 * - Delivered → the outcome is stored, then the message is deleted. Failed again → a copy with
 *   the new error is published (`Nats-Msg-Id` from request and sequence: stored once, however
 *   often a crash makes it be published), the outcome stored, then the old message deleted.
 *   Never is a message deleted before its outcome is safe.
 * - Attempts are rate limited (the Integration's rate limit, this replica's share, lowered on 429
 *   and held for Retry-After), retried with the Integration's backoff up to `maxAttempts` within
 *   the run, and counted by a circuit breaker with the Integration's thresholds: when it opens (or
 *   the shared circuit is open at the start, or the credentials are refused `maxAttempts` times)
 *   the run stops `Failed` and every message not yet redriven stays parked untouched.
 * - The lease is renewed every third of its TTL; a renewal that finds the record taken over
 *   stops the run at once. On shutdown the lease is given up so another replica resumes at once.
 */
import { redriveFilterSchema, redriveSelects, type RedriveFilter } from '../api/index.ts';
import { CircuitBreaker, perReplicaShare, ThrottleController, TokenBucket } from '../delivery/index.ts';
import {
  circuitKey,
  fallbackStreamName,
  fallbackSubject,
  redriveKey,
  throttleKey,
  type FallbackPublisher,
  type FallbackReason,
  type FallbackStore,
  type ObjectRef,
  type ParkedMessage,
  type SharedCircuit,
  type SharedKv,
  type SharedRedrive,
  type SharedThrottle,
} from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { Admission } from './admission.ts';
import type { CompiledIntegration } from './compile-integration.ts';
import { decide } from './decide.ts';
import { errorMessage, prepareEvent, sendAttempt } from './prepare-event.ts';
import type { RedriveMetrics } from './redrive-metrics.ts';
import {
  finished,
  isReparkedCopy,
  parkedFacts,
  progressed,
  released,
  renewed,
  reparkHeaders,
  reparking,
  reparkMsgId,
  replayedEvent,
  type ParkedFacts,
  type Repark,
} from './redrive-state.ts';
import type { JsonataEvaluator } from './transform-pool.ts';

export interface RedriveRunDeps {
  readonly state: SharedKv;
  readonly fallback: FallbackStore;
  readonly publisher: FallbackPublisher;
  readonly transforms: JsonataEvaluator;
  readonly metrics: RedriveMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Replicas running an Integration (`namespace/name`), which share its rate limit with the
   * redrive; at least 1.
   */
  runnersOf(key: string): number;
}

export interface RedriveRunOptions {
  readonly ref: ObjectRef;
  readonly runId: string;
  /** The record as this run wrote it when taking it. */
  readonly record: SharedRedrive;
  /** The generation running now on this replica; undefined once none runs (suspended, deleted). */
  compiled(): CompiledIntegration | undefined;
  readonly ttlMs: number;
}

type One = { readonly kind: 'delivered' } | { readonly kind: 'failedAgain' } | { readonly kind: 'stop'; readonly message: string } | { readonly kind: 'aborted' };

/**
 * How the message loop ended: at the end of the selection; stopped early (`stopped` says why:
 * the run is Failed); or `giveUp` — shut down, the Integration no longer runs here, or another
 * run holds the record now.
 */
type LoopEnd = { readonly kind: 'end' } | { readonly kind: 'stopped'; readonly message: string } | { readonly kind: 'giveUp' };

/** The reliability units of one run, built from the generation it started with. */
interface Units {
  readonly breaker: CircuitBreaker;
  readonly admission: Admission;
  onThrottle(retryAfterMs: number | undefined): void;
}

export class RedriveRun {
  private readonly d: RedriveRunDeps;
  private readonly o: RedriveRunOptions;
  private readonly log: Logger;
  private readonly key: string;
  /** Aborted on shutdown (the caller's signal) or when the record was taken over. */
  private readonly abort = new AbortController();
  private lost = false;

  constructor(deps: RedriveRunDeps, options: RedriveRunOptions) {
    this.d = deps;
    this.o = options;
    this.key = redriveKey(options.ref);
    this.log = deps.logger.child({ namespace: options.ref.namespace, integration: options.ref.name, redrive: options.record.request, runId: options.runId });
  }

  /** Runs to the end (the record finished), or until `signal` aborts or the record is lost. */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => {
      this.abort.abort();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const renewing = this.renewLoop();
    try {
      const end = await this.messages();
      if (end.kind === 'giveUp') {
        await this.giveUp();
        return;
      }
      const stopped = end.kind === 'stopped' ? end.message : undefined;
      const done = await this.d.state.casLoop<SharedRedrive>(this.key, (c) => finished(c?.value, this.o.runId, this.d.clock.now(), stopped));
      if (done) this.log.info({ result: done.value.result, selected: done.value.selected, delivered: done.value.delivered, failedAgain: done.value.failedAgain }, `redrive ${done.value.result}: ${done.value.message ?? ''}`);
    } catch (err) {
      // NATS trouble: the lease is given up and the run resumed from its recorded progress.
      this.log.warn({ err: errorMessage(err) }, 'redrive interrupted; it resumes from its recorded progress');
      await this.giveUp();
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.abort.abort();
      await renewing;
    }
  }

  private async giveUp(): Promise<void> {
    if (this.lost) {
      this.log.warn('the redrive record was taken over or removed; this run stopped');
      return;
    }
    await this.d.state.casLoop<SharedRedrive>(this.key, (c) => released(c?.value, this.o.runId, this.d.clock.now())).catch(() => undefined);
    this.log.info('redrive paused; its lease was given up so it resumes from its recorded progress');
  }

  private async renewLoop(): Promise<void> {
    const signal = this.abort.signal;
    // A function, not the property: TypeScript narrows `signal.aborted` across awaits otherwise.
    const aborted = (): boolean => signal.aborted;
    while (!aborted()) {
      await this.d.clock.sleep(Math.max(100, Math.floor(this.o.ttlMs / 3)), signal).catch(() => undefined);
      if (aborted()) return;
      try {
        const r = await this.d.state.casLoop<SharedRedrive>(this.key, (c) => renewed(c?.value, this.o.runId, this.d.clock.now(), this.o.ttlMs));
        if (!r) this.loseRecord();
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'could not renew the redrive lease; trying again');
      }
    }
  }

  private loseRecord(): void {
    this.lost = true;
    this.abort.abort();
  }

  /** Every selected message in order. */
  private async messages(): Promise<LoopEnd> {
    const { ref, record } = this.o;
    const filter: RedriveFilter = redriveFilterSchema.parse(record.filter ?? {});
    const startedAt = record.startedAt ?? this.d.clock.now();
    const upTo = record.upToSequence ?? 0;
    // A holder that died between storing an outcome and deleting its message.
    if (record.pendingDelete !== undefined) await this.unpark(ref, record.pendingDelete);
    // A holder that died while parking a message again: if its copy is stored, that was the outcome.
    if (record.reparking !== undefined && !(await this.settleReparking(record.reparking, upTo))) return { kind: 'giveUp' };
    const first = this.o.compiled();
    if (!first) return { kind: 'giveUp' };
    const units = await this.units(first);
    const circuit = await this.d.state.get<SharedCircuit>(circuitKey(ref));
    const now = this.d.clock.now();
    if (circuit && circuit.value.state === 'Open' && (circuit.value.openUntil ?? 0) > now) {
      return { kind: 'stopped', message: `the circuit is open until ${new Date(circuit.value.openUntil ?? now).toISOString()}: the target is still failing` };
    }
    let sequence = record.nextSequence ?? 1;
    for (;;) {
      if (this.abort.signal.aborted) return { kind: 'giveUp' };
      const c = this.o.compiled();
      if (!c) return { kind: 'giveUp' };
      const m = await this.parked(ref, sequence);
      if (!m || m.sequence > upTo) return { kind: 'end' };
      sequence = m.sequence + 1;
      const facts = parkedFacts(m.headers);
      if (!redriveSelects(filter, { sequence: m.sequence, reason: facts.reason, parkedAtMs: m.parkedAtMs }, startedAt)) continue;
      const one = await this.one(c, m, facts, units);
      if (one.kind === 'aborted') return { kind: 'giveUp' };
      if (one.kind === 'stop') return { kind: 'stopped', message: one.message };
      const written = await this.d.state.casLoop<SharedRedrive>(this.key, (cur) =>
        progressed(cur?.value, this.o.runId, { now: this.d.clock.now(), ttlMs: this.o.ttlMs }, m.sequence, one.kind),
      );
      if (!written) {
        this.loseRecord();
        return { kind: 'giveUp' };
      }
      this.d.metrics.message(ref.namespace, ref.name, one.kind === 'delivered' ? 'delivered' : 'failed_again');
      await this.unpark(ref, m.sequence);
    }
  }

  /**
   * Finishes a message an earlier holder was parking again when it died: when its copy is in the
   * stream (after the selection's end), the message failed again — recorded and deleted here,
   * never attempted a second time (an event delivered now would stay parked in its copy too).
   * False when the record was lost meanwhile.
   */
  private async settleReparking(sequence: number, upTo: number): Promise<boolean> {
    const { ref, record } = this.o;
    const original = await this.parked(ref, sequence);
    if (original?.sequence !== sequence) return true;
    for (let m = await this.parked(ref, upTo + 1); m; m = await this.parked(ref, m.sequence + 1)) {
      if (!isReparkedCopy(m.headers, original.headers, record.request)) continue;
      const written = await this.d.state.casLoop<SharedRedrive>(this.key, (cur) =>
        progressed(cur?.value, this.o.runId, { now: this.d.clock.now(), ttlMs: this.o.ttlMs }, sequence, 'failedAgain'),
      );
      if (!written) {
        this.loseRecord();
        return false;
      }
      this.d.metrics.message(ref.namespace, ref.name, 'failed_again');
      await this.unpark(ref, sequence);
      this.log.info({ seq: sequence, copy: m.sequence }, 'the previous holder had parked this message again; recorded as failed again');
      return true;
    }
    return true;
  }

  private async units(c: CompiledIntegration): Promise<Units> {
    const clock = this.d.clock;
    const b = c.config.delivery.circuitBreaker;
    const breaker = new CircuitBreaker({ key: `${c.namespace}/${c.name}/redrive`, failures: b.failures, windowMs: b.windowMs, openForMs: b.openForMs, clock });
    const rate = c.config.delivery.rateLimit;
    // The redrive shares the rate with the pipelines of the replicas that run the Integration.
    const runners = (): number => this.d.runnersOf(`${this.o.ref.namespace}/${this.o.ref.name}`);
    const throttle = rate ? new ThrottleController({ perSecond: rate.perSecond }, clock) : undefined;
    const bucket = rate ? new TokenBucket({ perSecond: perReplicaShare(rate.perSecond, runners()), burst: rate.burst, clock }) : undefined;
    const admission = new Admission(clock, breaker, bucket);
    const applyRate = (): void => {
      if (throttle && bucket) bucket.setRate(perReplicaShare(throttle.currentRate(), runners()));
    };
    // A 429 the pipelines saw holds the redrive too, at the rate they lowered to.
    const shared = await this.d.state.get<SharedThrottle>(throttleKey(this.o.ref));
    if (shared) {
      admission.holdUntil(shared.value.limitedUntil);
      if (throttle && shared.value.perSecond > 0) throttle.adopt(shared.value);
      applyRate();
    }
    return {
      breaker,
      admission,
      onThrottle: (retryAfterMs) => {
        admission.holdUntil(clock.now() + (retryAfterMs ?? 1_000));
        throttle?.onThrottle(retryAfterMs);
        applyRate();
      },
    };
  }

  /** One selected message: prepared as a new event would be, then attempts until an outcome. */
  private async one(c: CompiledIntegration, m: ParkedMessage, facts: ParkedFacts, u: Units): Promise<One> {
    const signal = this.abort.signal;
    let prepared = prepareEvent(c, replayedEvent(m, facts), this.d.transforms);
    if (prepared instanceof Promise) prepared = await prepared;
    if (prepared.kind === 'park') {
      await this.repark(m, facts, { reason: prepared.reason, error: prepared.error, attempts: 0, key: facts.key });
      return { kind: 'failedAgain' };
    }
    const { key } = prepared;
    let attempts = 0;
    let authFailures = 0;
    let firstAttemptMs: number | undefined;
    for (;;) {
      const circuit = u.breaker.snapshot();
      if (circuit.state === 'Open') return { kind: 'stop', message: `the circuit opened after ${circuit.consecutiveFailures} failures in a row: the target is still failing` };
      try {
        if (!u.admission.tryNow()) await u.admission.wait(signal);
      } catch {
        return { kind: 'aborted' };
      }
      const started = this.d.clock.now();
      firstAttemptMs ??= started;
      attempts++;
      const { outcome, detail, response } = await sendAttempt(c.send, c, prepared, () => this.d.clock.now());
      const now = this.d.clock.now();
      if (outcome.kind === 'status' && (outcome.status === 401 || outcome.status === 403) && !c.classify.successCodes.includes(outcome.status)) authFailures++;
      const decision = decide(
        { outcome, attempt: attempts - authFailures, firstAttemptMs, now, authFailures, othersDeliveredSinceAuthFailure: false },
        c.classify,
        c.config.delivery,
      );
      u.breaker.record(decision.breaker);
      const status = outcome.kind === 'status' || outcome.kind === 'contract' ? outcome.status : undefined;
      this.log.debug({ seq: m.sequence, key, attempt: attempts, status, decision: decision.kind }, 'redrive attempt');
      switch (decision.kind) {
        case 'ack':
          return { kind: 'delivered' };
        case 'fallback':
          await this.repark(m, facts, {
            reason: decision.reason,
            error: decision.reason === 'exhausted' ? `gave up after ${attempts} attempts in redrive ${this.o.record.request}; last: ${detail}` : detail,
            httpStatus: status,
            responseBody: response?.body,
            attempts,
            firstAttemptMs,
            lastAttemptMs: now,
            key,
          });
          return { kind: 'failedAgain' };
        case 'retry':
          if (decision.unauthorized && authFailures >= c.config.delivery.maxAttempts) {
            return { kind: 'stop', message: `the target refused the credentials ${authFailures} times (${detail}): update the Secret of spec.target.auth` };
          }
          if (decision.throttle) u.onThrottle(decision.retryAfterMs);
          try {
            await this.d.clock.sleep(decision.delayMs, signal);
          } catch {
            return { kind: 'aborted' };
          }
      }
    }
  }

  /** Publishes the message again with its new error; the caller deletes the old one once the outcome is stored. */
  /** The first parked message at or after `sequence`. */
  private parked(ref: ObjectRef, sequence: number): Promise<ParkedMessage | undefined> {
    return this.d.fallback.next(fallbackStreamName(ref), fallbackSubject(ref), sequence);
  }

  private unpark(ref: ObjectRef, sequence: number): Promise<boolean> {
    return this.d.fallback.delete(fallbackStreamName(ref), sequence);
  }

  private async repark(m: ParkedMessage, facts: ParkedFacts, why: Omit<Repark, 'integration' | 'request' | 'reason'> & { reason: FallbackReason }): Promise<void> {
    const { ref, record } = this.o;
    const marked = await this.d.state.casLoop<SharedRedrive>(this.key, (cur) => reparking(cur?.value, this.o.runId, { now: this.d.clock.now(), ttlMs: this.o.ttlMs }, m.sequence));
    if (!marked) {
      this.loseRecord();
      throw new Error('the redrive record was taken over before a message could be parked again');
    }
    const headers = reparkHeaders(m, { ...why, integration: `${ref.namespace}/${ref.name}`, request: record.request }, facts);
    await this.d.publisher.publish({ subject: fallbackSubject(ref), msgId: reparkMsgId(record.request, m.sequence), payload: m.payload, headers });
    this.log.info({ seq: m.sequence, reason: why.reason, httpStatus: why.httpStatus, error: why.error }, 'redriven message failed again; parked again with the new error');
  }
}
