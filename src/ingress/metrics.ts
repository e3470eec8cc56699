/** The ingress's Prometheus metrics, registered on the operator's registry. */
import { Counter, Histogram, type Registry } from '../observability/index.ts';

/** What became of one request; each maps to one status code (see server.ts). */
export type Outcome =
  | 'accepted'
  | 'duplicate'
  | 'unauthorized'
  | 'malformed'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_large'
  | 'unsupported_media_type'
  | 'throttled'
  | 'unavailable';

type RequestCounter = ReturnType<Counter<'namespace' | 'integration' | 'outcome'>['labels']>;
type DurationHistogram = ReturnType<Histogram<'outcome'>['labels']>;

export class IngressMetrics {
  /** Labels `namespace` and `integration` are empty for requests that name no webhook (404, 405): unknown paths must not create series. */
  readonly requests: Counter<'namespace' | 'integration' | 'outcome'>;
  readonly duration: Histogram<'outcome'>;
  // Label children kept: prom-client hashes a label object on every inc/observe, a cost per request.
  private readonly counters = new Map<string, RequestCounter>();
  private readonly durations = new Map<Outcome, DurationHistogram>();

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'ferry_webhook_requests_total',
      help: 'Webhook requests by outcome: accepted and duplicate were stored (202); the others were refused.',
      labelNames: ['namespace', 'integration', 'outcome'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'ferry_webhook_request_duration_seconds',
      help: 'Time from a webhook request to its answer (for accepted ones: up to the PubAck).',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }

  /** Removes a deleted Integration's series (its kept label children too). */
  forget(namespace: string, integration: string): void {
    const prefix = `${namespace}/${integration}/`;
    for (const key of [...this.counters.keys()]) {
      if (!key.startsWith(prefix)) continue;
      this.counters.delete(key);
      this.requests.remove({ namespace, integration, outcome: key.slice(prefix.length) });
    }
  }

  /** Counts one answered request and its duration. */
  record(namespace: string, integration: string, outcome: Outcome, seconds: number): void {
    const key = `${namespace}/${integration}/${outcome}`;
    let counter = this.counters.get(key);
    if (!counter) {
      counter = this.requests.labels(namespace, integration, outcome);
      this.counters.set(key, counter);
    }
    counter.inc();
    let histogram = this.durations.get(outcome);
    if (!histogram) {
      histogram = this.duration.labels(outcome);
      this.durations.set(outcome, histogram);
    }
    histogram.observe(seconds);
  }
}
