/**
 * The runtime's Prometheus metrics (DESIGN.md, Observability). One instance per process,
 * registered on the process registry; label values are namespace and Integration name.
 */
import { Counter, Gauge, LocalHistogram, type Registry } from '../observability/index.ts';
import type { TransformPoolMetrics } from './transform-pool.ts';

export type EventOutcome = 'delivered' | 'retry' | 'invalid' | 'transform' | 'exhausted' | 'rejected' | 'contract';

const OUTCOMES: readonly EventOutcome[] = ['delivered', 'retry', 'invalid', 'transform', 'exhausted', 'rejected', 'contract'];
const CIRCUIT_STATES = ['Closed', 'Open', 'HalfOpen'] as const;

export interface IntegrationMetrics {
  outcome(outcome: EventOutcome): void;
  readonly retries: { inc(): void };
  readonly throttled: { inc(): void };
  readonly deliveryDuration: { observe(seconds: number): void };
  readonly endToEnd: { observe(seconds: number): void };
  readonly fallbackPublishFailures: { inc(): void };
  readonly inflight: { inc(): void; dec(): void };
  /** An event whose outcome became final within spec.sla.deliverWithin (`met`) or not (`missed`). */
  readonly slaMet: { inc(): void };
  readonly slaMissed: { inc(): void };
  circuit(state: 'Closed' | 'Open' | 'HalfOpen'): void;
}

/**
 * What one Integration's pipeline counted since the last scrape, for the metrics bumped on every
 * event. prom-client's labelled children hash their label set on every call (≈ 0.5 µs each, five
 * calls per event); these are plain fields, handed to prom-client when it collects.
 */
interface LocalCounts {
  readonly namespace: string;
  readonly integration: string;
  /** Events by outcome since the last collect. */
  readonly outcomes: Record<EventOutcome, number>;
  /** Events being processed now. */
  inflight: number;
  /** The inflight series exists once the pipeline has handled an event (as with inc/dec). */
  seen: boolean;
}

export class RuntimeMetrics {
  /** Pipelines' local counts not yet forgotten; a deleted Integration's are dropped, never flushed. */
  private readonly local = new Set<LocalCounts>();

  readonly events: Counter<'namespace' | 'integration' | 'outcome'>;
  readonly retries: Counter<'namespace' | 'integration'>;
  readonly throttled: Counter<'namespace' | 'integration'>;
  /** Observed twice per event: series resolved once per pipeline, not a label hash per call. */
  readonly deliveryDuration: LocalHistogram<'namespace' | 'integration'>;
  readonly endToEnd: LocalHistogram<'namespace' | 'integration'>;
  readonly circuit: Gauge<'namespace' | 'integration' | 'state'>;
  readonly fallbackPublishFailures: Counter<'namespace' | 'integration'>;
  readonly inflight: Gauge<'namespace' | 'integration'>;
  readonly slaEvents: Counter<'namespace' | 'integration' | 'result'>;
  /** Live replicas as this one counts them (membership heartbeats); pipelines are assigned over them. */
  readonly replicas: Gauge;
  /** Pipelines running on this replica (the Integrations assigned here, minus suspended ones). */
  readonly pipelines: Gauge;
  /** Integrations moved onto (`assigned`) or off (`unassigned`) this replica by a change of the live set or of their spec. */
  readonly assignmentChanges: Counter<'change'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({
      name: 'ferry_events_total',
      help: 'Events by final or interim outcome.',
      labelNames: ['namespace', 'integration', 'outcome'],
      registers,
      collect: () => {
        this.flushOutcomes();
      },
    });
    this.retries = new Counter({ name: 'ferry_retries_total', help: 'Attempts that failed and were scheduled again (nak with delay).', labelNames: ['namespace', 'integration'], registers });
    this.throttled = new Counter({ name: 'ferry_throttled_total', help: 'Attempts answered 429, or 503 with Retry-After.', labelNames: ['namespace', 'integration'], registers });
    this.deliveryDuration = new LocalHistogram({
      name: 'ferry_delivery_duration_seconds',
      help: 'Duration of one HTTP attempt.',
      labelNames: ['namespace', 'integration'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.endToEnd = new LocalHistogram({
      name: 'ferry_end_to_end_latency_seconds',
      help: 'From the event entering its stream to its final outcome (delivered or parked).',
      labelNames: ['namespace', 'integration'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.circuit = new Gauge({ name: 'ferry_circuit_breaker_state', help: 'Circuit state, one-hot by state.', labelNames: ['namespace', 'integration', 'state'], registers });
    this.fallbackPublishFailures = new Counter({
      name: 'ferry_fallback_publish_failures_total',
      help: 'Fallback publishes that failed; the event stayed in its source stream.',
      labelNames: ['namespace', 'integration'],
      registers,
    });
    this.replicas = new Gauge({ name: 'ferry_replicas', help: 'Live operator replicas seen in the membership bucket (pipelines are assigned over them).', registers });
    this.replicas.set(1);
    this.pipelines = new Gauge({ name: 'ferry_pipelines', help: 'Integration pipelines running on this replica.', registers });
    this.assignmentChanges = new Counter({
      name: 'ferry_pipeline_assignment_changes_total',
      help: 'Integrations moved onto (assigned) or off (unassigned) this replica by a change of the live replicas or of spec.runtime.replicas.',
      labelNames: ['change'],
      registers,
    });
    // Both series from the start: rate() of a counter that appears at its first increment misses that increment.
    for (const change of ['assigned', 'unassigned']) this.assignmentChanges.inc({ change }, 0);
    this.inflight = new Gauge({
      name: 'ferry_inflight_events',
      help: 'Events being processed now.',
      labelNames: ['namespace', 'integration'],
      registers,
      collect: () => {
        this.flushInflight();
      },
    });
    // The latency itself is ferry_end_to_end_latency_seconds (same start and end); this says met or missed against each Integration's own deliverWithin.
    this.slaEvents = new Counter({
      name: 'ferry_sla_events_total',
      help: 'Events whose outcome became final, by whether they met spec.sla.deliverWithin (a parked event misses it); only for Integrations with an SLA.',
      labelNames: ['namespace', 'integration', 'result'],
      registers,
    });
  }

  /**
   * The metric children of one Integration, resolved once: prom-client hashes a label object on
   * every `inc({…})`, which is measurable on a path that runs for every event.
   */
  forIntegration(namespace: string, integration: string): IntegrationMetrics {
    const counts: LocalCounts = { namespace, integration, outcomes: { delivered: 0, retry: 0, invalid: 0, transform: 0, exhausted: 0, rejected: 0, contract: 0 }, inflight: 0, seen: false };
    this.local.add(counts);
    return {
      outcome: (o) => {
        counts.outcomes[o] += 1;
      },
      retries: this.retries.labels(namespace, integration),
      throttled: this.throttled.labels(namespace, integration),
      deliveryDuration: this.deliveryDuration.series({ namespace, integration }),
      endToEnd: this.endToEnd.series({ namespace, integration }),
      fallbackPublishFailures: this.fallbackPublishFailures.labels(namespace, integration),
      inflight: {
        inc: () => {
          counts.inflight += 1;
          counts.seen = true;
        },
        dec: () => {
          counts.inflight -= 1;
        },
      },
      slaMet: this.slaEvents.labels(namespace, integration, 'met'),
      slaMissed: this.slaEvents.labels(namespace, integration, 'missed'),
      circuit: (state) => {
        this.setCircuit(namespace, integration, state);
      },
    };
  }

  /** Hands the outcomes counted since the last collect to prom-client (one call per series). */
  private flushOutcomes(): void {
    for (const counts of this.local) {
      for (const outcome of OUTCOMES) {
        const n = counts.outcomes[outcome];
        if (n === 0) continue;
        this.events.inc({ namespace: counts.namespace, integration: counts.integration, outcome }, n);
        counts.outcomes[outcome] = 0;
      }
    }
  }

  /** Sets the inflight gauges; two pipelines of one Integration (a swap in progress) add up. */
  private flushInflight(): void {
    const totals = new Map<string, { namespace: string; integration: string; n: number }>();
    for (const counts of this.local) {
      if (!counts.seen) continue;
      const key = `${counts.namespace}/${counts.integration}`;
      const t = totals.get(key);
      if (t) t.n += counts.inflight;
      else totals.set(key, { namespace: counts.namespace, integration: counts.integration, n: counts.inflight });
    }
    for (const t of totals.values()) this.inflight.set({ namespace: t.namespace, integration: t.integration }, t.n);
  }

  /** Removes every series of a deleted Integration, so a re-created one starts from zero. */
  forget(namespace: string, integration: string): void {
    const labels = { namespace, integration };
    for (const counts of this.local) if (counts.namespace === namespace && counts.integration === integration) this.local.delete(counts);
    for (const outcome of OUTCOMES) this.events.remove({ ...labels, outcome });
    for (const state of CIRCUIT_STATES) this.circuit.remove({ ...labels, state });
    for (const result of ['met', 'missed']) this.slaEvents.remove({ ...labels, result });
    for (const m of [this.retries, this.throttled, this.deliveryDuration, this.endToEnd, this.fallbackPublishFailures, this.inflight]) m.remove(labels);
  }

  setCircuit(namespace: string, integration: string, state: 'Closed' | 'Open' | 'HalfOpen'): void {
    for (const s of CIRCUIT_STATES) this.circuit.set({ namespace, integration, state: s }, s === state ? 1 : 0);
  }
}

/**
 * The transform pool's metrics: workers replaced (a rising `timeout` count means an Integration's
 * expressions keep outliving their time box) and tasks waiting for a worker (a persistently
 * non-zero depth means the pool is too small: `--transform-workers`).
 */
export function transformPoolMetrics(registry: Registry): TransformPoolMetrics {
  const registers = [registry];
  const replaced = new Counter({
    name: 'ferry_transform_workers_replaced_total',
    help: 'JSONata transform workers terminated or lost, by reason (timeout, exited, start).',
    labelNames: ['reason'],
    registers,
  });
  const depth = new Gauge({ name: 'ferry_transform_queue_depth', help: 'JSONata transforms waiting for a free worker.', registers });
  return {
    workerReplaced: (reason) => {
      replaced.inc({ reason });
    },
    queueDepth: (n) => {
      depth.set(n);
    },
  };
}
