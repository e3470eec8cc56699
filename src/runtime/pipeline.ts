/**
 * One Integration running on one replica: consume → decode → validate → transform → deliver →
 * ack, or nak(delay), or park in the fallback stream and term.
 *
 * Expected flow: the supervisor builds a pipeline from a compiled generation, `start`s it,
 * `reconfigure`s it in place when a new generation keeps the same source, and `stop`s it (drain)
 * when the Integration is suspended or deleted, its source changes, or the process shuts down.
 * Guarantees:
 * - An event is acked only when its outcome is final: a 2xx that passed `responseSchema`, or the
 *   event stored in the fallback stream (publish-then-term). A failed fallback publish naks with
 *   a growing delay: the event stays in its source, and `Degraded` says FallbackUnavailable.
 * - Every message this replica holds — waiting for a slot, the circuit, a throttle hold or a
 *   token, or in flight — keeps its lease (`working()`, see LeaseKeeper): JetStream never
 *   redelivers a message while this replica still has it, so no two copies are ever sent at once.
 * - At most `delivery.concurrency` events are being handled at once; each is independent, so a
 *   slow event does not hold back the others (no head-of-line blocking).
 * - Attempts are counted per event in the attempts ledger (JetStream KV), not taken from the
 *   delivery count: `maxAttempts`, `Ferry-Attempts` and `maxElapsed` (from the first attempt) are
 *   about HTTP attempts made, not about redeliveries caused by shutdowns, swaps or lost acks.
 * - 401/403 answers are the target's problem (credentials wrong or rotated), not the event's: a
 *   breaker failure, the event stays in its source, never parked for it; new credentials close the
 *   breaker and resume the consumer at once.
 * - `stats.delivered` counts events, not successful attempts: an ack is confirmed by the server;
 *   when the confirmation is lost the success is written to the ledger, and a redelivered copy is
 *   acked without being sent or counted again.
 * - `stop()` stops pulling, hands unstarted events back at once, and waits for the events in
 *   flight to finish.
 * Caveats: `delivery.orderingKey` is refused when compiling (Stalled) until ordered delivery exists.
 */
import { randomUUID } from 'node:crypto';
import {
  backoffDelay,
  CircuitBreaker,
  perReplicaShare,
  ThrottleController,
  TokenBucket,
  type CircuitTransition,
  type DeliveryOutcome,
  type DeliveryResponse,
} from '../delivery/index.ts';
import {
  addStats,
  applyStatsFlush,
  circuitKey,
  integrationConsumerName,
  NO_ATTEMPTS,
  consumeMessages,
  statsKey,
  throttleKey,
  fallbackHeaders,
  fallbackMsgId,
  fallbackSubject,
  type AttemptLedger,
  type AttemptRecord,
  type ConsumerControl,
  type FallbackPublisher,
  type InboundMessage,
  type SharedCircuit,
  type SharedKv,
  type SharedStats,
  type StatsFlush,
  type SharedThrottle,
} from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { Admission } from './admission.ts';
import type { CompiledIntegration } from './compile-integration.ts';
import { decide, type Decision, type FallbackReason } from './decide.ts';
import type { LeaseKeeper } from './lease-keeper.ts';
import type { EventOutcome, IntegrationMetrics, RuntimeMetrics } from './metrics.ts';
import { errorMessage, prepareEvent, sendAttempt } from './prepare-event.ts';
import type { JsonataEvaluator } from './transform-pool.ts';

export interface PipelineDeps {
  readonly nc: Parameters<typeof consumeMessages>[0]['nc'];
  readonly publisher: FallbackPublisher;
  readonly control: ConsumerControl;
  readonly state: SharedKv;
  readonly ledger: AttemptLedger;
  readonly leases: LeaseKeeper;
  readonly metrics: RuntimeMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where JSONata transforms run: the process's worker pool, never this thread. */
  readonly transforms: JsonataEvaluator;
  /**
   * Replicas running this Integration (the supervisor's assignment over the live members), which
   * share its rate limit; at least 1. Read on every rate update: it changes with the membership.
   */
  runners(): number;
}

/** How often counters go to the shared stats key. */
const STATS_FLUSH_MS = 1_000;
/** Backoff of a failed fallback publish: 1 s, 2 s, 4 s … up to a minute. */
const FALLBACK_RETRY = { initialMs: 1_000, maxMs: 60_000, multiplier: 2, jitter: 'equal' as const };
/** How long the server has to confirm an ack before the success is written to the ledger. */
const ACK_CONFIRM_MS = 5_000;
/** Ledger records kept in memory when KV could not be written (NATS down); oldest dropped first. */
const LOCAL_RECORDS_MAX = 10_000;

/** The counters' companions: last times and errors, written only when something happened. */
type StatTimes = { -readonly [K in Exclude<keyof SharedStats, 'delivered' | 'retried' | 'fallback' | 'invalid' | 'throttled'>]?: SharedStats[K] };

/** The fields every log line about one attempt of an event carries; built only when a line is written. */
function eventFields(msg: InboundMessage, attempt: number, generation: number): Record<string, unknown> {
  return { seq: msg.streamSequence, subject: msg.subject, attempt, generation };
}

class Aborted extends Error {
  override readonly name = 'Aborted';
}

/** What the attempts ledger knows of an event, and whether it is stored there. */
interface Known {
  readonly record: AttemptRecord;
  readonly stored: boolean;
}

/** A message held by this replica, with the release of its lease. */
interface Held {
  readonly msg: InboundMessage;
  readonly release: () => void;
}

export class IntegrationPipeline {
  private current: CompiledIntegration;
  private readonly deps: PipelineDeps;
  private readonly log: Logger;
  private readonly ref: { namespace: string; name: string };
  private readonly stopController = new AbortController();
  private readonly admission: Admission;
  private throttle: ThrottleController | undefined;
  /** Pulled and kept alive, waiting for a free slot. */
  private readonly waiting: Held[] = [];
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly metrics: IntegrationMetrics;
  /** Counters since the last flush; plain fields, bumped in place on every event. */
  private readonly unflushed = { delivered: 0, retried: 0, fallback: 0, invalid: 0, throttled: 0, slaMet: 0, slaLate: 0 };
  private unflushedTimes: StatTimes = {};
  /**
   * A flush that has not been confirmed: retried as it is (same number) until it is, so counters
   * are never dropped, only late — and, its number being recorded in KV, never added twice.
   */
  private pendingFlush: StatsFlush | undefined;
  private flushSeq = 0;
  /** This pipeline instance, as a writer of the shared counters. */
  private readonly statsWriter = randomUUID();
  /** Ledger records whose KV write failed, by stream sequence: used until it is written. */
  private readonly localRecords = new Map<number, AttemptRecord>();
  /** When this replica last delivered an event (tells a per-event 403 from wrong credentials). */
  private lastDeliveredAt = 0;
  /**
   * Bumped when new credentials reset the breaker: attempts still in flight with the old ones
   * must not count against the new ones (their 401s would open the breaker again at once).
   */
  private credentialsEpoch = 0;
  private running: Promise<void> | undefined;
  private discardStats = false;
  /** What the last attempt answered, for the shared circuit state when it trips. */
  private lastAttemptDetail: string | undefined;
  /**
   * Wakes the stats loop parked while idle, and the rate loop parked without a rate limit. An
   * idle pipeline has no timer of its own: 1,000 idle Integrations ticking two 1 s loops each
   * were 2,000 timer wake-ups a second doing nothing.
   */
  private wakeStats: (() => void) | undefined;
  private wakeRate: (() => void) | undefined;

  constructor(compiled: CompiledIntegration, deps: PipelineDeps) {
    this.current = compiled;
    this.deps = deps;
    this.ref = { namespace: compiled.namespace, name: compiled.name };
    this.log = deps.logger.child({ namespace: compiled.namespace, integration: compiled.name });
    this.metrics = deps.metrics.forIntegration(compiled.namespace, compiled.name);
    const [throttle, bucket] = this.makeRate(compiled);
    this.throttle = throttle;
    this.admission = new Admission(deps.clock, this.makeBreaker(compiled), bucket);
    this.metrics.circuit('Closed');
  }

  /** The generation events are processed with now. */
  get compiled(): CompiledIntegration {
    return this.current;
  }

  /**
   * True when `next` can replace the running generation in place: same source stream. Then the
   * message source stays open, so nothing pulled has to go back to the server on a config change.
   */
  canReconfigure(next: CompiledIntegration): boolean {
    return this.current.config.source.stream === next.config.source.stream;
  }

  /**
   * Switches to `next` for every event not yet started; events in flight finish with the
   * generation they started with. Breaker and rate limiter are rebuilt only when their settings
   * changed (their state is kept otherwise). New credentials close the breaker and resume the
   * consumer at once: the failures were about the old ones.
   */
  reconfigure(next: CompiledIntegration): void {
    const prev = this.current;
    this.current = next;
    if (JSON.stringify(prev.config.delivery.circuitBreaker) !== JSON.stringify(next.config.delivery.circuitBreaker)) {
      this.admission.breaker = this.makeBreaker(next);
    }
    if (JSON.stringify(prev.config.delivery.rateLimit) !== JSON.stringify(next.config.delivery.rateLimit)) {
      [this.throttle, this.admission.bucket] = this.makeRate(next);
      this.wakeRate?.();
    }
    if (prev.credentialsFingerprint !== next.credentialsFingerprint) this.onNewCredentials();
    this.pump();
  }

  private onNewCredentials(): void {
    this.credentialsEpoch++;
    this.log.info('credentials changed: closing the circuit and resuming the consumer');
    this.admission.breaker.reset();
    this.admission.wake();
    const c = this.compiled;
    void this.deps.control.resume(c.config.source.stream, integrationConsumerName(this.ref)).catch((err: unknown) => {
      this.log.warn({ err: errorMessage(err) }, 'could not resume the consumer');
    });
  }

  private makeBreaker(compiled: CompiledIntegration): CircuitBreaker {
    const b = compiled.config.delivery.circuitBreaker;
    return new CircuitBreaker({
      key: `${compiled.namespace}/${compiled.name}`,
      failures: b.failures,
      windowMs: b.windowMs,
      openForMs: b.openForMs,
      clock: this.deps.clock,
      onTransition: (t) => {
        this.onCircuitTransition(t);
      },
    });
  }

  private makeRate(compiled: CompiledIntegration): [ThrottleController | undefined, TokenBucket | undefined] {
    const rate = compiled.config.delivery.rateLimit;
    if (!rate) return [undefined, undefined];
    return [
      new ThrottleController({ perSecond: rate.perSecond }, this.deps.clock),
      new TokenBucket({ perSecond: perReplicaShare(rate.perSecond, this.deps.runners()), burst: rate.burst, clock: this.deps.clock }),
    ];
  }

  /** Starts consuming; returns at once. */
  start(): void {
    const signal = this.stopController.signal;
    this.running = Promise.all([this.consumeLoop(signal), this.statsLoop(signal), this.rateLoop(signal)]).then(() => undefined);
  }

  /**
   * Stops pulling, hands unstarted events back, waits for in-flight ones, flushes counters —
   * unless the Integration was deleted (`deleted`): its shared counters are being removed, and a
   * late flush would hand them to a re-created Integration of the same name.
   */
  async stop(deleted = false): Promise<void> {
    if (deleted) this.discardStats = true;
    this.stopController.abort(new Aborted('pipeline stopping'));
    await this.running;
    await this.idle();
    await this.flushStats();
  }

  private async idle(): Promise<void> {
    if (this.active === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Takes every message as soon as it arrives and keeps its lease: what waits for a slot waits
   * here, never unseen in the client's buffer. The server's `max_ack_pending` bounds how many.
   */
  private async consumeLoop(signal: AbortSignal): Promise<void> {
    const c = this.compiled;
    // A callback per message, not an async iterator: no promise hop between arrival and start.
    await consumeMessages(
      {
        nc: this.deps.nc,
        stream: c.config.source.stream,
        consumer: integrationConsumerName(this.ref),
        maxMessages: c.config.delivery.concurrency,
        clock: this.deps.clock,
        logger: this.log,
      },
      signal,
      (msg) => {
        this.waiting.push({ msg, release: this.deps.leases.hold(msg) });
        this.wakeStats?.();
        this.pump();
      },
    );
    // Stopping: whatever never started goes back to the server now, not after ack_wait.
    const unstarted = this.waiting.splice(0);
    for (const held of unstarted) this.handBack(held);
    this.log.info({ handedBack: unstarted.length, inFlight: this.active }, 'stopped pulling; unstarted events handed back');
  }

  /** Starts waiting events while slots are free. */
  private pump(): void {
    const signal = this.stopController.signal;
    while (this.active < this.compiled.config.delivery.concurrency && this.waiting.length > 0 && !signal.aborted) {
      const held = this.waiting.shift();
      if (!held) break;
      this.active++;
      this.metrics.inflight.inc();
      void this.run(held, signal);
    }
  }

  /** One event start to finish, then its slot is freed; one async frame, no promise chain. */
  private async run(held: Held, signal: AbortSignal): Promise<void> {
    try {
      await this.handle(held.msg, signal);
    } catch (err) {
      // handle() decides every event's fate itself; reaching here is a bug. Leave the event
      // unacked: it is redelivered after ack_wait, never lost.
      this.log.error({ err, seq: held.msg.streamSequence }, 'unexpected error while handling an event');
    } finally {
      held.release();
      this.active--;
      this.metrics.inflight.dec();
      if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }

  private handBack(held: Held): void {
    held.release();
    held.msg.nak(1);
  }

  /**
   * What the ledger knows of an event; a first delivery has no record and costs no lookup — and
   * no promise hop: only a redelivery reads KV.
   */
  private recordOf(msg: InboundMessage): Known | Promise<Known> {
    const local = this.localRecords.get(msg.streamSequence);
    if (local?.stream === msg.stream) return { record: local, stored: true };
    if (msg.deliveryCount === 1) return { record: NO_ATTEMPTS(msg.stream), stored: false };
    return this.readLedger(msg);
  }

  private async readLedger(msg: InboundMessage): Promise<Known> {
    try {
      const found = await this.deps.ledger.get(this.ref, msg.stream, msg.streamSequence);
      return found ? { record: found, stored: true } : { record: NO_ATTEMPTS(msg.stream), stored: false };
    } catch (err) {
      // Unknown: assume every earlier delivery was an attempt. Errs towards parking too early,
      // never towards retrying for ever.
      this.log.warn({ seq: msg.streamSequence, err: errorMessage(err) }, 'attempts ledger unreadable; counting every delivery as an attempt');
      return { record: { ...NO_ATTEMPTS(msg.stream), attempts: msg.deliveryCount - 1, naks: msg.deliveryCount - 1 }, stored: false };
    }
  }

  /** Writes a record; when KV is unreachable it is kept in memory (and retried with the next write). */
  private async remember(msg: InboundMessage, record: AttemptRecord): Promise<void> {
    try {
      await this.deps.ledger.put(this.ref, msg.streamSequence, record);
      this.localRecords.delete(msg.streamSequence);
    } catch (err) {
      this.localRecords.set(msg.streamSequence, record);
      if (this.localRecords.size > LOCAL_RECORDS_MAX) {
        const oldest = this.localRecords.keys().next();
        if (!oldest.done) this.localRecords.delete(oldest.value);
      }
      this.log.warn({ seq: msg.streamSequence, err: errorMessage(err) }, 'could not write the attempts ledger; kept in memory');
      this.retryRemember(msg.streamSequence);
    }
  }

  /** Keeps trying to write a record that is only in memory, so another replica sees it too. */
  private retryRemember(sequence: number): void {
    const signal = this.stopController.signal;
    void (async () => {
      for (let n = 1; !signal.aborted; n++) {
        await this.deps.clock.sleep(Math.min(30_000, 1_000 * 2 ** n), signal).catch(() => undefined);
        const record = this.localRecords.get(sequence);
        if (!record) return;
        try {
          await this.deps.ledger.put(this.ref, sequence, record);
          if (this.localRecords.get(sequence) === record) this.localRecords.delete(sequence);
          return;
        } catch {
          // still unreachable
        }
      }
    })();
  }

  /** The event reached its end: its record, if it had one, is no longer needed. */
  private forget(msg: InboundMessage, stored: boolean): void {
    this.localRecords.delete(msg.streamSequence);
    if (!stored) return;
    void this.deps.ledger.delete(this.ref, msg.streamSequence).catch(() => undefined);
  }

  private async handle(msg: InboundMessage, signal: AbortSignal): Promise<void> {
    let known = this.recordOf(msg);
    if (known instanceof Promise) known = await known;
    const { record, stored } = known;
    if (record.succeeded) {
      // Applied and counted before; only the ack was lost. Sending it again would make the
      // target replay it (or worse, apply it twice if it ignores keys).
      if (await msg.ackConfirmed(ACK_CONFIRM_MS)) this.forget(msg, stored);
      this.log.info({ seq: msg.streamSequence }, 'redelivered after a lost ack; acked without sending again');
      return;
    }
    const c = this.compiled;

    // 1. Decode, validate, transform: failures here are the event's, never retried.
    let prepared = prepareEvent(c, { stream: msg.stream, sequence: msg.streamSequence, data: msg.data, headers: msg.headers }, this.deps.transforms);
    if (prepared instanceof Promise) prepared = await prepared;
    if (prepared.kind === 'park') {
      await this.park(msg, record, stored, { reason: prepared.reason, error: prepared.error });
      return;
    }
    const { key } = prepared;

    // 2. Wait for the circuit, the throttle hold and the rate limit; the lease is kept meanwhile.
    // Most events need not wait, and then take no promise hop here.
    try {
      if (!this.admission.tryNow()) await this.admission.wait(signal);
    } catch {
      // Shutting down before the attempt: hand the event back at once; no attempt was made.
      msg.nak(1);
      return;
    }

    // 3. One attempt.
    const epoch = this.credentialsEpoch;
    const started = this.deps.clock.now();
    // Always the current credentials: an event that waited (an open circuit) while the Secret
    // was updated must not go out with the refused ones.
    const { outcome, detail, response, threw } = await sendAttempt(this.compiled.send, c, prepared, () => this.deps.clock.now());
    if (threw) this.log.info({ ...eventFields(msg, record.attempts + 1, c.generation), key, err: detail }, 'delivery attempt failed');
    const now = this.deps.clock.now();
    this.metrics.deliveryDuration.observe((now - started) / 1000);
    const unauthorized = outcome.kind === 'status' && (outcome.status === 401 || outcome.status === 403) && !c.classify.successCodes.includes(outcome.status);
    const after: AttemptRecord = {
      ...record,
      attempts: record.attempts + 1,
      firstAttemptMs: record.firstAttemptMs ?? started,
      authFailures: record.authFailures + (unauthorized ? 1 : 0),
      firstAuthFailureMs: record.firstAuthFailureMs ?? (unauthorized ? now : undefined),
    };

    // 4. The contract decides.
    const decision = decide(
      {
        outcome,
        attempt: after.attempts - after.authFailures,
        firstAttemptMs: after.firstAttemptMs ?? started,
        now,
        authFailures: after.authFailures,
        othersDeliveredSinceAuthFailure: after.firstAuthFailureMs !== undefined && this.lastDeliveredAt > after.firstAuthFailureMs,
      },
      c.classify,
      c.config.delivery,
    );
    this.lastAttemptDetail = detail;
    if (epoch === this.credentialsEpoch) this.admission.breaker.record(decision.breaker);
    await this.apply(msg, after, stored, decision, { outcome, detail, response, key, generation: c.generation });
  }

  private async apply(
    msg: InboundMessage,
    record: AttemptRecord,
    stored: boolean,
    decision: Decision,
    attempt: { outcome: DeliveryOutcome; detail: string; response: DeliveryResponse | undefined; key: string; generation: number },
  ): Promise<void> {
    const now = this.deps.clock.now();
    const { outcome, detail, response, key, generation } = attempt;
    const status = outcome.kind === 'status' || outcome.kind === 'contract' ? outcome.status : undefined;
    switch (decision.kind) {
      case 'ack': {
        this.lastDeliveredAt = now;
        this.count('delivered');
        this.unflushedTimes.lastDeliveredTime = now;
        this.finished(msg.storedAtMs, now, true);
        if (await msg.ackConfirmed(ACK_CONFIRM_MS)) {
          this.forget(msg, stored);
        } else {
          // The server may not have the ack: if the event comes back, it must be recognised as
          // delivered (and counted) already.
          await this.remember(msg, { ...record, succeeded: true });
          this.log.warn({ ...eventFields(msg, record.attempts, generation), key }, 'ack not confirmed; the success is recorded so a redelivery is not sent again');
        }
        // Checked first: building the log object for a disabled level costs on every event.
        if (this.log.isLevelEnabled('debug')) this.log.debug({ ...eventFields(msg, record.attempts, generation), key, status }, 'delivered');
        return;
      }
      case 'retry': {
        await this.remember(msg, { ...record, naks: record.naks + 1 });
        msg.nak(decision.delayMs);
        const reason = decision.unauthorized ? 'unauthorized' : decision.throttle ? 'throttled' : 'retrying';
        this.count('retry');
        this.unflushedTimes.lastError = { time: now, reason, httpStatus: status, message: detail };
        if (decision.unauthorized && status !== undefined) this.unflushedTimes.lastUnauthorized = { time: now, httpStatus: status };
        this.metrics.retries.inc();
        if (decision.throttle) this.onThrottled(decision.retryAfterMs);
        this.log.info({ ...eventFields(msg, record.attempts, generation), key, status, delayMs: decision.delayMs, outcome: reason }, 'attempt failed; retrying later');
        return;
      }
      case 'fallback':
        await this.park(msg, record, stored, {
          reason: decision.reason,
          error: decision.reason === 'exhausted' ? `gave up after ${record.attempts} attempts; last: ${detail}` : detail,
          httpStatus: status,
          responseBody: response?.body,
          key,
        });
        return;
    }
  }

  /** Publish-then-term; on a failed publish the event stays in the source (nak with a growing delay). */
  private async park(
    msg: InboundMessage,
    record: AttemptRecord,
    stored: boolean,
    why: { reason: FallbackReason; error: string; httpStatus?: number | undefined; responseBody?: string | undefined; key?: string | undefined },
  ): Promise<void> {
    const now = this.deps.clock.now();
    const headers = fallbackHeaders(msg.headers, {
      integration: `${this.ref.namespace}/${this.ref.name}`,
      reason: why.reason,
      error: why.error,
      httpStatus: why.httpStatus,
      responseBody: why.responseBody,
      attempts: record.attempts,
      firstAttemptMs: record.firstAttemptMs,
      lastAttemptMs: record.attempts > 0 ? now : undefined,
      sourceStream: msg.stream,
      sourceSequence: msg.streamSequence,
      sourceSubject: msg.subject,
      idempotencyKey: why.key,
    });
    let duplicate: boolean;
    try {
      ({ duplicate } = await this.deps.publisher.publish({ subject: fallbackSubject(this.ref), msgId: fallbackMsgId(msg.stream, msg.streamSequence), payload: msg.data, headers }));
    } catch (err) {
      const failures = record.parkFailures + 1;
      const delayMs = backoffDelay(failures, FALLBACK_RETRY);
      await this.remember(msg, { ...record, parkFailures: failures, naks: record.naks + 1 });
      msg.nak(delayMs);
      const message = errorMessage(err);
      this.metrics.fallbackPublishFailures.inc();
      this.unflushedTimes.lastFallbackFailure = { time: now, message };
      this.log.error({ seq: msg.streamSequence, reason: why.reason, err: message, failures, delayMs }, 'fallback publish failed; the event stays in its source stream');
      return;
    }
    msg.term(`ferry: ${why.reason}`);
    this.forget(msg, stored);
    this.unflushedTimes.lastParkedTime = now;
    if (duplicate) {
      // Parked before (the term was lost): one event, one entry, counted once.
      this.log.info({ seq: msg.streamSequence, reason: why.reason }, 'event was already in the fallback stream; terminated');
      return;
    }
    this.count(why.reason);
    this.unflushedTimes.lastError = { time: now, reason: why.reason, httpStatus: why.httpStatus, message: why.error };
    if (why.reason === 'contract') this.unflushedTimes.lastContractDrift = now;
    this.finished(msg.storedAtMs, now, false);
    this.log.warn(
      { seq: msg.streamSequence, subject: msg.subject, attempts: record.attempts, key: why.key, reason: why.reason, httpStatus: why.httpStatus, error: why.error },
      'event parked in the fallback stream',
    );
  }

  /**
   * An event's outcome is final (acked after delivery, or parked): its end-to-end latency, and
   * whether it met the SLA — a parked event never does. No allocation: it runs for every event.
   */
  private finished(storedAtMs: number, now: number, delivered: boolean): void {
    const latencyMs = Math.max(0, now - storedAtMs);
    this.metrics.endToEnd.observe(latencyMs / 1000);
    const sla = this.current.config.sla;
    if (sla === undefined) return;
    if (delivered && latencyMs <= sla.deliverWithinMs) {
      this.unflushed.slaMet += 1;
      this.metrics.slaMet.inc();
    } else {
      this.unflushed.slaLate += 1;
      this.metrics.slaMissed.inc();
    }
  }

  private count(outcome: EventOutcome): void {
    this.metrics.outcome(outcome);
    const u = this.unflushed;
    if (outcome === 'delivered') u.delivered += 1;
    else if (outcome === 'retry') u.retried += 1;
    else {
      u.fallback += 1;
      if (outcome === 'invalid') u.invalid += 1;
    }
  }

  private onThrottled(retryAfterMs: number | undefined): void {
    this.metrics.throttled.inc();
    const now = this.deps.clock.now();
    this.admission.holdUntil(now + (retryAfterMs ?? 1_000));
    this.unflushed.throttled += 1;
    if (!this.throttle) {
      void this.deps.state.put(throttleKey(this.ref), { perSecond: 0, limitedUntil: this.admission.heldUntil, decreasedAt: now } satisfies SharedThrottle).catch(() => undefined);
      return;
    }
    const update = this.throttle.onThrottle(retryAfterMs);
    this.applyRate();
    if (update.decreased || update.state.limitedUntil > now) {
      void this.deps.state.put(throttleKey(this.ref), update.state satisfies SharedThrottle).catch((err: unknown) => {
        this.log.warn({ err: errorMessage(err) }, 'could not share the lowered rate');
      });
    }
  }

  private applyRate(): void {
    if (!this.throttle || !this.admission.bucket) return;
    this.admission.bucket.setRate(perReplicaShare(this.throttle.currentRate(), this.deps.runners()));
  }

  private onCircuitTransition(t: CircuitTransition): void {
    const c = this.compiled;
    this.metrics.circuit(t.to);
    if (t.reason === 'adopted') return;
    this.log.warn({ from: t.from, to: t.to, reason: t.reason, openUntil: t.snapshot.openUntil }, `circuit ${t.to}`);
    const shared: SharedCircuit = {
      state: t.snapshot.state,
      reason: t.reason,
      since: t.snapshot.since,
      consecutiveFailures: t.snapshot.consecutiveFailures,
      openUntil: t.snapshot.openUntil,
      ...(t.to === 'Open' && this.lastAttemptDetail !== undefined ? { lastFailure: this.lastAttemptDetail.slice(0, 200) } : {}),
    };
    void this.deps.state.put(circuitKey(this.ref), shared).catch((err: unknown) => {
      this.log.warn({ err: errorMessage(err) }, 'could not share the circuit state');
    });
    if (t.to === 'Open' && t.snapshot.openUntil !== undefined) {
      // Pausing on the server stops every replica at once: no attempts burned, nothing flooded
      // into the fallback stream while the target is down.
      void this.deps.control.pause(c.config.source.stream, integrationConsumerName(this.ref), t.snapshot.openUntil).catch((err: unknown) => {
        this.log.warn({ err: errorMessage(err) }, 'could not pause the consumer');
      });
    }
  }

  /**
   * Adopts what other replicas share: the circuit and the lowered rate. Called by the
   * supervisor's single watch on the shared bucket (one watch per process, not per pipeline).
   */
  onShared(key: string, value: unknown): void {
    if (value === undefined) return;
    if (key === circuitKey(this.ref)) {
      const s = value as SharedCircuit;
      const mine = this.admission.breaker.snapshot();
      if (s.state !== mine.state && s.since > mine.since) {
        this.admission.breaker.adopt({ ...s });
        // Another replica closed it on new credentials: waiters need not wait for their next look.
        if (s.state === 'Closed') this.admission.wake();
      }
    } else if (key === throttleKey(this.ref)) {
      const t = value as SharedThrottle;
      this.admission.holdUntil(t.limitedUntil);
      if (this.throttle && t.perSecond > 0) {
        this.throttle.adopt(t);
        this.applyRate();
      }
    }
  }

  /**
   * The rate recovers with time alone (no events), and the member count changes: re-apply both
   * every second while there is a rate limit; without one there is nothing to apply, and the
   * loop waits until a new generation brings one.
   */
  private async rateLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!this.throttle) {
        await parkUntil(signal, (wake) => (this.wakeRate = wake));
        this.wakeRate = undefined;
        continue;
      }
      this.applyRate();
      await this.deps.clock.sleep(1_000, signal).catch(() => undefined);
    }
  }

  /**
   * Flushes the counters every STATS_FLUSH_MS while events come and go. Once everything counted
   * is written and nothing is held or in flight, it waits for the next message instead of
   * ticking: every count is made while an event is held, so none can be left unflushed.
   */
  private async statsLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.deps.clock.sleep(STATS_FLUSH_MS, signal).catch(() => undefined);
      await this.flushStats();
      if (this.active === 0 && this.waiting.length === 0 && !this.pendingFlush && !this.hasUnflushed()) {
        await parkUntil(signal, (wake) => (this.wakeStats = wake));
        this.wakeStats = undefined;
      }
    }
  }

  private hasUnflushed(): boolean {
    const u = this.unflushed;
    return u.delivered + u.retried + u.fallback + u.invalid + u.throttled + u.slaMet + u.slaLate > 0 || Object.keys(this.unflushedTimes).length > 0;
  }

  private takeDelta(): SharedStats | undefined {
    const u = this.unflushed;
    const t = this.unflushedTimes;
    const { slaMet, slaLate, ...counts } = u;
    if (u.delivered + u.retried + u.fallback + u.invalid + u.throttled + slaMet + slaLate === 0 && Object.keys(t).length === 0) return undefined;
    // SLA counters only when there are some: an Integration without an SLA shares none.
    const delta = addStats(undefined, { ...counts, ...(slaMet + slaLate === 0 ? {} : { slaMet, slaLate }), ...t });
    u.delivered = u.retried = u.fallback = u.invalid = u.throttled = u.slaMet = u.slaLate = 0;
    this.unflushedTimes = {};
    return delta;
  }

  /** Writes the unconfirmed flush, then what was counted since, each exactly once. */
  private async flushStats(): Promise<void> {
    if (this.discardStats) return;
    for (;;) {
      if (!this.pendingFlush) {
        const delta = this.takeDelta();
        if (!delta) return;
        this.flushSeq += 1;
        this.pendingFlush = { writer: this.statsWriter, seq: this.flushSeq, delta };
      }
      const flush = this.pendingFlush;
      try {
        // A write whose reply was lost is applied: the retry (here or in update's own loop)
        // finds this flush's number recorded and adds nothing.
        await this.deps.state.update<SharedStats>(statsKey(this.ref), (current) => applyStatsFlush(current, flush, this.deps.clock.now()));
        this.pendingFlush = undefined;
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, 'stats flush failed; will retry');
        return;
      }
    }
  }
}

/** Resolves when `register`'s wake function is called or `signal` aborts, whichever is first. */
async function parkUntil(signal: AbortSignal, register: (wake: () => void) => void): Promise<void> {
  if (signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    register(done);
  });
}
