/**
 * One Integration generation running on one replica: consume → decode → validate → transform →
 * deliver → ack, or nak(delay), or park in the fallback stream and term.
 *
 * Expected flow: the supervisor builds a pipeline from a compiled generation, `start`s it, and
 * `stop`s it (drain) when the generation is replaced, the Integration suspended or deleted, or the
 * process shuts down.
 * Guarantees:
 * - An event is acked only when its outcome is final: a 2xx that passed `responseSchema`, or the
 *   event stored in the fallback stream (publish-then-term). A failed fallback publish naks with
 *   a delay: the event stays in its source.
 * - At most `delivery.concurrency` events are in flight; each is independent, so a slow event
 *   does not hold back the others (no head-of-line blocking).
 * - The attempt number is JetStream's delivery count: no attempt counter lives in memory, and
 *   retry schedules survive restarts. Events that wait (open circuit, throttle, rate limit) keep
 *   their lease with `working()` and burn no attempt.
 * - `stop()` stops pulling, hands buffered-but-unstarted events back at once, and waits for the
 *   events in flight to finish.
 * Caveats: `delivery.orderingKey` is refused when compiling (Stalled) until ordered delivery exists.
 */
import {
  CircuitBreaker,
  idempotencyKey,
  outcomeOfError,
  parseRetryAfter,
  perReplicaShare,
  renderTemplate,
  ThrottleController,
  TokenBucket,
  type CircuitTransition,
  type Deliverer,
  type DeliveryOutcome,
  type DeliveryResponse,
} from '../delivery/index.ts';
import { describeValidationErrors } from '../api/index.ts';
import {
  addStats,
  circuitKey,
  integrationConsumerName,
  readConsumer,
  statsKey,
  throttleKey,
  fallbackSubject,
  type ConsumerControl,
  type FallbackPublisher,
  type InboundMessage,
  type SharedCircuit,
  type SharedKv,
  type SharedLastError,
  type SharedStats,
  type SharedThrottle,
} from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import type { CompiledIntegration } from './compile-integration.ts';
import { decodeEvent } from './decode.ts';
import { decide, type Decision, type FallbackReason } from './decide.ts';
import { fallbackHeaders, fallbackMsgId } from './fallback-message.ts';
import type { EventOutcome, IntegrationMetrics, RuntimeMetrics } from './metrics.ts';
import { applyMapping, transformEvent } from './transform.ts';

export interface PipelineDeps {
  readonly nc: Parameters<typeof readConsumer>[0]['nc'];
  readonly deliverer: Deliverer;
  readonly publisher: FallbackPublisher;
  readonly control: ConsumerControl;
  readonly state: SharedKv;
  readonly metrics: RuntimeMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Live replicas sharing the rate limit (from the membership bucket); at least 1. */
  members(): number;
}

/** How often waiting events renew their lease; far below any ack_wait the controller sets. */
const WORKING_EVERY_MS = 5_000;
/** How often counters go to the shared stats key. */
const STATS_FLUSH_MS = 1_000;
/** A JSONata expression's budget when the spec sets none is the api default; depth is ours. */
const JSONATA_MAX_DEPTH = 200;
/** Delay before a failed fallback publish is tried again. */
const FALLBACK_RETRY_MS = 5_000;

class Slots {
  private free: number;
  private waiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private readonly size: number;

  constructor(size: number) {
    this.size = size;
    this.free = size;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free += 1;
    if (this.free === this.size) for (const w of this.idleWaiters.splice(0)) w();
  }

  get inFlight(): number {
    return this.size - this.free;
  }

  async idle(): Promise<void> {
    if (this.free === this.size) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}

class Aborted extends Error {
  override readonly name = 'Aborted';
}

export class IntegrationPipeline {
  private current: CompiledIntegration;
  private readonly deps: PipelineDeps;
  private readonly log: Logger;
  private readonly ref: { namespace: string; name: string };
  private readonly stopController = new AbortController();
  private breaker: CircuitBreaker;
  private throttle: ThrottleController | undefined;
  private bucket: TokenBucket | undefined;
  private readonly slots: Slots;
  private limitedUntil = 0;
  private readonly metrics: IntegrationMetrics;
  /** Counters since the last flush; plain fields, bumped in place on every event. */
  private readonly unflushed = { delivered: 0, retried: 0, fallback: 0, invalid: 0, throttled: 0 };
  private unflushedTimes: { lastDeliveredTime?: number; lastError?: SharedLastError; lastContractDrift?: number } = {};
  /** A delta whose flush failed, kept for the next one: counters are never dropped, only late. */
  private carried: SharedStats | undefined;
  private running: Promise<void> | undefined;

  constructor(compiled: CompiledIntegration, deps: PipelineDeps) {
    this.current = compiled;
    this.deps = deps;
    this.ref = { namespace: compiled.namespace, name: compiled.name };
    this.log = deps.logger.child({ namespace: compiled.namespace, integration: compiled.name });
    this.slots = new Slots(compiled.config.delivery.concurrency);
    this.breaker = this.makeBreaker(compiled);
    [this.throttle, this.bucket] = this.makeRate(compiled);
    this.metrics = deps.metrics.forIntegration(compiled.namespace, compiled.name);
    this.metrics.circuit('Closed');
  }

  /** The generation events are processed with now. */
  get compiled(): CompiledIntegration {
    return this.current;
  }

  /**
   * True when `next` can replace the running generation in place: same stream, consumer and
   * concurrency. Then the message source stays open, so nothing prefetched has to go back to
   * the server (and wait for ack_wait) on a config change.
   */
  canReconfigure(next: CompiledIntegration): boolean {
    const a = this.current.config;
    const b = next.config;
    return a.source.stream === b.source.stream && a.delivery.concurrency === b.delivery.concurrency;
  }

  /**
   * Switches to `next` for every event not yet started; events in flight finish with the
   * generation they started with. Breaker and rate limiter are rebuilt only when their settings
   * changed (their state is kept otherwise).
   */
  reconfigure(next: CompiledIntegration): void {
    const prev = this.current;
    this.current = next;
    if (JSON.stringify(prev.config.delivery.circuitBreaker) !== JSON.stringify(next.config.delivery.circuitBreaker)) {
      this.breaker = this.makeBreaker(next);
    }
    if (JSON.stringify(prev.config.delivery.rateLimit) !== JSON.stringify(next.config.delivery.rateLimit)) {
      [this.throttle, this.bucket] = this.makeRate(next);
    }
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
      new TokenBucket({ perSecond: perReplicaShare(rate.perSecond, this.deps.members()), burst: rate.burst, clock: this.deps.clock }),
    ];
  }

  /** Starts consuming; returns at once. */
  start(): void {
    const signal = this.stopController.signal;
    this.running = Promise.all([this.consumeLoop(signal), this.statsLoop(signal), this.rateLoop(signal)]).then(() => undefined);
  }

  /** Stops pulling, returns unstarted events, waits for in-flight ones, flushes counters. */
  async stop(): Promise<void> {
    this.stopController.abort(new Aborted('pipeline stopping'));
    await this.running;
    await this.slots.idle();
    await this.flushStats();
  }

  private async consumeLoop(signal: AbortSignal): Promise<void> {
    const c = this.compiled;
    const messages = readConsumer(
      {
        nc: this.deps.nc,
        stream: c.config.source.stream,
        consumer: integrationConsumerName(this.ref),
        maxMessages: c.config.delivery.concurrency,
        clock: this.deps.clock,
        logger: this.log,
      },
      signal,
    );
    for await (const msg of messages) {
      await this.slots.acquire();
      if (signal.aborted) {
        msg.nak(1);
        this.slots.release();
        continue;
      }
      this.metrics.inflight.inc();
      void this.handle(msg, signal)
        .catch((err: unknown) => {
          // handle() decides every event's fate itself; reaching here is a bug. Leave the event
          // unacked: it is redelivered after ack_wait, never lost.
          this.log.error({ err, seq: msg.streamSequence }, 'unexpected error while handling an event');
        })
        .finally(() => {
          this.metrics.inflight.dec();
          this.slots.release();
        });
    }
  }

  private async handle(msg: InboundMessage, signal: AbortSignal): Promise<void> {
    const c = this.compiled;
    const attempt = msg.deliveryCount;
    const eventLog = { seq: msg.streamSequence, subject: msg.subject, attempt, generation: c.generation };

    // 1. Decode, validate, transform: failures here are the event's, never retried.
    let data: unknown;
    let ceHeaders: Record<string, string> = {};
    try {
      const decoded = decodeEvent(msg.data, msg.headers, c.config.source.format);
      data = decoded.data;
      if (decoded.cloudEvent) ceHeaders = { 'ce-source': decoded.cloudEvent.source, 'ce-id': decoded.cloudEvent.id };
    } catch (err) {
      await this.park(msg, 'invalid', errorMessage(err), undefined, undefined, undefined);
      return;
    }
    if (c.validate && !c.validate(data)) {
      await this.park(msg, 'invalid', describeValidationErrors(c.validate.errors), undefined, undefined, undefined);
      return;
    }
    let body: unknown;
    try {
      // A mapping runs synchronously: no promise hop on the common path.
      // No transform: the event payload is the body.
      body =
        c.transform === undefined
          ? data
          : c.transform.kind === 'mapping'
            ? applyMapping(c.transform, data)
            : await transformEvent(c.transform, data, { timeoutMs: c.config.transform?.kind === 'jsonata' ? c.config.transform.timeoutMs : 1_000, maxDepth: JSONATA_MAX_DEPTH });
    } catch (err) {
      await this.park(msg, 'transform', errorMessage(err), undefined, undefined, undefined);
      return;
    }
    let url: string;
    let key: string;
    try {
      url = renderTemplate(c.url, data, 'url');
      key = idempotencyKey(
        { stream: msg.stream, sequence: msg.streamSequence, headers: { ...flatHeaders(msg.headers), ...ceHeaders }, payload: data },
        c.idempotencyKey,
      ).key;
    } catch (err) {
      await this.park(msg, 'invalid', errorMessage(err), undefined, undefined, undefined);
      return;
    }

    // 2. Wait for the circuit, the throttle hold and the rate limit, keeping the lease; most
    // events need not wait, and then take no promise hop here.
    try {
      if (!this.admitNow()) await this.admit(msg, signal);
    } catch {
      // Shutting down before the attempt: hand the event back at once; no attempt was made.
      msg.nak(1);
      return;
    }

    // 3. One attempt.
    const started = this.deps.clock.now();
    let outcome: DeliveryOutcome;
    let response: DeliveryResponse | undefined;
    let detail: string;
    try {
      response = await this.deps.deliverer.deliver({
        url,
        method: c.config.target.method,
        headers: c.config.target.headers,
        body: { encoding: c.config.target.encoding, value: body },
        idempotencyKey: key,
        idempotencyHeader: c.config.target.idempotency.header,
        timeoutMs: c.config.target.timeoutMs,
      });
      ({ outcome, detail } = this.outcomeOf(c, response));
    } catch (err) {
      outcome = outcomeOfError(err);
      detail = errorMessage(err);
      this.log.info({ ...eventLog, key, err: detail }, 'delivery attempt failed');
    }
    const now = this.deps.clock.now();
    this.metrics.deliveryDuration.observe((now - started) / 1000);

    // 4. The contract decides.
    const decision = decide({ outcome, attempt, storedAtMs: msg.storedAtMs, now }, c.classify, c.config.delivery);
    this.breaker.record(decision.breaker);
    await this.apply(msg, decision, outcome, detail, response, key, eventLog);
  }

  private outcomeOf(c: CompiledIntegration, response: DeliveryResponse): { outcome: DeliveryOutcome; detail: string } {
    const retryAfter = response.headers['retry-after'];
    const retryAfterMs = retryAfter === undefined ? undefined : parseRetryAfter(retryAfter, { now: this.deps.clock.now(), maxMs: c.config.delivery.retryAfterMaxMs });
    if (c.validateResponse && c.config.target.successCodes.includes(response.status)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(response.body);
      } catch {
        return { outcome: { kind: 'contract', status: response.status }, detail: `HTTP ${response.status}: response body is not JSON, spec.target.responseSchema expects JSON` };
      }
      if (!c.validateResponse(parsed)) {
        return {
          outcome: { kind: 'contract', status: response.status },
          detail: `HTTP ${response.status}: response breaks spec.target.responseSchema: ${describeValidationErrors(c.validateResponse.errors)}`,
        };
      }
    }
    return { outcome: { kind: 'status', status: response.status, retryAfterMs }, detail: `HTTP ${response.status}` };
  }

  private async apply(
    msg: InboundMessage,
    decision: Decision,
    outcome: DeliveryOutcome,
    detail: string,
    response: DeliveryResponse | undefined,
    key: string,
    eventLog: Record<string, unknown>,
  ): Promise<void> {
    const now = this.deps.clock.now();
    const status = outcome.kind === 'status' || outcome.kind === 'contract' ? outcome.status : undefined;
    switch (decision.kind) {
      case 'ack':
        msg.ack();
        this.count('delivered');
        this.unflushedTimes.lastDeliveredTime = now;
        this.metrics.endToEnd.observe(Math.max(0, now - msg.storedAtMs) / 1000);
        // Checked first: building the log object for a disabled level costs on every event.
        if (this.log.isLevelEnabled('debug')) this.log.debug({ ...eventLog, key, status }, 'delivered');
        return;
      case 'retry': {
        msg.nak(decision.delayMs);
        const error = { time: now, reason: decision.throttle ? 'throttled' : 'retrying', httpStatus: status, message: detail };
        this.count('retry');
        this.unflushedTimes.lastError = error;
        this.metrics.retries.inc();
        if (decision.throttle) this.onThrottled(decision.retryAfterMs);
        this.log.info({ ...eventLog, key, status, delayMs: decision.delayMs, outcome: 'retry' }, 'attempt failed; retrying later');
        return;
      }
      case 'fallback':
        await this.park(msg, decision.reason, decision.reason === 'exhausted' ? `gave up after ${msg.deliveryCount} attempts; last: ${detail}` : detail, status, response?.body, key);
        return;
    }
  }

  /** Publish-then-term; on a failed publish the event stays in the source (nak with delay). */
  private async park(
    msg: InboundMessage,
    reason: FallbackReason,
    error: string,
    httpStatus: number | undefined,
    responseBody: string | undefined,
    key: string | undefined,
  ): Promise<void> {
    const now = this.deps.clock.now();
    const headers = fallbackHeaders(msg.headers, {
      integration: `${this.ref.namespace}/${this.ref.name}`,
      reason,
      error,
      httpStatus,
      responseBody,
      attempts: msg.deliveryCount,
      // No per-event memory: the first attempt is taken as when the event was stored, once retried.
      firstAttemptMs: msg.deliveryCount > 1 ? msg.storedAtMs : now,
      lastAttemptMs: now,
      sourceStream: msg.stream,
      sourceSequence: msg.streamSequence,
      sourceSubject: msg.subject,
      idempotencyKey: key,
    });
    try {
      await this.deps.publisher.publish({ subject: fallbackSubject(this.ref), msgId: fallbackMsgId(msg.stream, msg.streamSequence), payload: msg.data, headers });
    } catch (err) {
      msg.nak(FALLBACK_RETRY_MS);
      this.metrics.fallbackPublishFailures.inc();
      this.log.error({ seq: msg.streamSequence, reason, err: errorMessage(err) }, 'fallback publish failed; the event stays in its source stream');
      return;
    }
    msg.term(`ferry: ${reason}`);
    const lastError = { time: now, reason, httpStatus, message: error };
    this.count(reason);
    this.unflushedTimes.lastError = lastError;
    if (reason === 'contract') this.unflushedTimes.lastContractDrift = now;
    this.metrics.endToEnd.observe(Math.max(0, now - msg.storedAtMs) / 1000);
    this.log.warn({ seq: msg.streamSequence, subject: msg.subject, attempt: msg.deliveryCount, key, reason, httpStatus, error }, 'event parked in the fallback stream');
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

  /** Admits at once when nothing has to wait (the common case); false means call `admit`. */
  private admitNow(): boolean {
    // Only a closed circuit admits without reserving a probe, so anything else takes the slow path.
    if (!this.breaker.closed || this.deps.clock.now() < this.limitedUntil) return false;
    return !this.bucket || this.bucket.tryTake();
  }

  /** Waits until the circuit admits an attempt, any throttle hold has passed and a token is free. */
  private async admit(msg: InboundMessage, signal: AbortSignal): Promise<void> {
    let lastWorking = this.deps.clock.now();
    const keepLease = (): void => {
      const now = this.deps.clock.now();
      if (now - lastWorking >= WORKING_EVERY_MS) {
        msg.working();
        lastWorking = now;
      }
    };
    for (;;) {
      if (signal.aborted) throw new Aborted('stopping');
      const now = this.deps.clock.now();
      if (now < this.limitedUntil) {
        keepLease();
        await this.deps.clock.sleep(Math.min(this.limitedUntil - now, 1_000), signal);
        continue;
      }
      if (this.bucket && !this.bucket.tryTake()) {
        keepLease();
        await this.deps.clock.sleep(Math.max(1, Math.min(this.bucket.waitTime(), 1_000)), signal);
        continue;
      }
      if (!this.breaker.tryAcquire()) {
        keepLease();
        const until = this.breaker.snapshot().openUntil;
        await this.deps.clock.sleep(Math.max(10, Math.min(until === undefined ? 250 : until - now, 1_000)), signal);
        continue;
      }
      return;
    }
  }

  private onThrottled(retryAfterMs: number | undefined): void {
    this.metrics.throttled.inc();
    const now = this.deps.clock.now();
    this.limitedUntil = Math.max(this.limitedUntil, now + (retryAfterMs ?? 1_000));
    this.unflushed.throttled += 1;
    if (!this.throttle) {
      void this.deps.state.put(throttleKey(this.ref), { perSecond: 0, limitedUntil: this.limitedUntil, decreasedAt: now } satisfies SharedThrottle).catch(() => undefined);
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
    if (!this.throttle || !this.bucket) return;
    this.bucket.setRate(perReplicaShare(this.throttle.currentRate(), this.deps.members()));
  }

  private onCircuitTransition(t: CircuitTransition): void {
    const c = this.compiled;
    this.metrics.circuit(t.to);
    if (t.reason === 'adopted') return;
    this.log.warn({ from: t.from, to: t.to, reason: t.reason, openUntil: t.snapshot.openUntil }, `circuit ${t.to}`);
    const shared: SharedCircuit = { state: t.snapshot.state, since: t.snapshot.since, consecutiveFailures: t.snapshot.consecutiveFailures, openUntil: t.snapshot.openUntil };
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
      const mine = this.breaker.snapshot();
      if (s.state !== mine.state && s.since > mine.since) this.breaker.adopt({ ...s });
    } else if (key === throttleKey(this.ref)) {
      const t = value as SharedThrottle;
      this.limitedUntil = Math.max(this.limitedUntil, t.limitedUntil);
      if (this.throttle && t.perSecond > 0) {
        this.throttle.adopt(t);
        this.applyRate();
      }
    }
  }

  /** The rate recovers with time alone (no events), and the member count changes: re-apply both. */
  private async rateLoop(signal: AbortSignal): Promise<void> {
    if (!this.bucket) return;
    while (!signal.aborted) {
      this.applyRate();
      await this.deps.clock.sleep(1_000, signal).catch(() => undefined);
    }
  }

  private async statsLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.deps.clock.sleep(STATS_FLUSH_MS, signal).catch(() => undefined);
      await this.flushStats();
    }
  }

  private takeDelta(): SharedStats | undefined {
    const u = this.unflushed;
    const t = this.unflushedTimes;
    const fresh = u.delivered + u.retried + u.fallback + u.invalid + u.throttled > 0 || Object.keys(t).length > 0;
    let delta = this.carried;
    this.carried = undefined;
    if (fresh) {
      delta = addStats(delta, { ...u, ...t });
      u.delivered = u.retried = u.fallback = u.invalid = u.throttled = 0;
      this.unflushedTimes = {};
    }
    return delta;
  }

  private async flushStats(): Promise<void> {
    const delta = this.takeDelta();
    if (!delta) return;
    try {
      await this.deps.state.update<SharedStats>(statsKey(this.ref), (current) => addStats(current, delta));
    } catch (err) {
      this.carried = addStats(this.carried, delta);
      this.log.debug({ err: errorMessage(err) }, 'stats flush failed; will retry');
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function flatHeaders(headers: ReadonlyMap<string, readonly string[]> | undefined): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (headers) for (const [k, v] of headers) out[k] = v[0];
  return out;
}
