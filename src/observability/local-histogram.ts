/**
 * A Prometheus histogram for paths that observe on every event.
 *
 * prom-client's `Histogram` re-validates and re-hashes the label set on every `observe`, even
 * through a child from `labels()`: two observations per event cost several µs in the pipeline's
 * profile. Here a series is resolved once (`series(labels)`), and an observation is a bucket
 * search over a short array and three additions. The registry renders it at scrape time through
 * the same interface prom-client's own metrics offer (`get`, `getForPromString`), so the
 * exposition is the one prom-client would write for the same observations.
 *
 * Guarantees: a series appears in the exposition from its first observation (as with prom-client);
 * `remove` drops it, and a later `series` for the same labels starts from zero. A value that is
 * not a finite number is ignored (prom-client would throw inside the caller's hot path).
 */
import type { Metric, MetricValueWithName, Registry } from 'prom-client';

/** What the registry reads from a metric at scrape time (prom-client's own shape). */
export interface HistogramSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly aggregator: 'sum';
  readonly values: readonly MetricValueWithName<string>[];
}

export interface HistogramSeries {
  observe(value: number): void;
}

export interface LocalHistogramOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** Upper bounds, ascending; `+Inf` is implied. */
  readonly buckets: readonly number[];
  readonly registers?: readonly Registry[];
}

class Series implements HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket, not cumulative; the last slot is +Inf alone. */
  readonly counts: number[];
  sum = 0;
  count = 0;
  private readonly bounds: readonly number[];

  constructor(labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    // Linear: a dozen bounds, and most observations land in the first few.
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count += 1;
  }
}

export class LocalHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly labelNames: readonly L[];
  private readonly bounds: readonly number[];
  private readonly all = new Map<string, Series>();

  constructor(options: LocalHistogramOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    // The registry asks a metric only for name, get() and getForPromString().
    for (const r of options.registers ?? []) r.registerMetric(this as unknown as Metric);
  }

  private key(labels: Readonly<Record<L, string>>): string {
    return this.labelNames.map((n) => labels[n]).join('\u0000');
  }

  /** The series of `labels`; every caller with the same labels shares it. */
  series(labels: Readonly<Record<L, string>>): HistogramSeries {
    const key = this.key(labels);
    let s = this.all.get(key);
    if (!s) {
      const own: Record<string, string> = {};
      for (const n of this.labelNames) own[n] = labels[n];
      s = new Series(own, this.bounds);
      this.all.set(key, s);
    }
    return s;
  }

  remove(labels: Readonly<Record<L, string>>): void {
    this.all.delete(this.key(labels));
  }

  reset(): void {
    this.all.clear();
  }

  get(): Promise<HistogramSnapshot> {
    const values: MetricValueWithName<string>[] = [];
    for (const s of this.all.values()) {
      if (s.count === 0) continue;
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  getForPromString(): Promise<HistogramSnapshot> {
    return this.get();
  }
}
