/**
 * Get-or-create for metrics in a registry that several instances share: two work queues (or two
 * watchers) record into one `workqueue_depth` family with different `name` labels, and
 * prom-client refuses to register a name twice.
 */
import { Counter, Gauge, Histogram, type Registry } from '../observability/index.ts';

interface Spec<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
}

export function counter<L extends string>(registry: Registry, spec: Spec<L>): Counter<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing instanceof Counter) return existing;
  if (existing) throw new TypeError(`metric ${spec.name} is registered with another type`);
  return new Counter({ ...spec, registers: [registry] });
}

export function gauge<L extends string>(registry: Registry, spec: Spec<L>): Gauge<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing instanceof Gauge) return existing;
  if (existing) throw new TypeError(`metric ${spec.name} is registered with another type`);
  return new Gauge({ ...spec, registers: [registry] });
}

export function histogram<L extends string>(
  registry: Registry,
  spec: Spec<L> & { readonly buckets: readonly number[] },
): Histogram<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing instanceof Histogram) return existing;
  if (existing) throw new TypeError(`metric ${spec.name} is registered with another type`);
  return new Histogram({ ...spec, buckets: [...spec.buckets], registers: [registry] });
}

/** prometheus.ExponentialBuckets(10e-9, 10, 12): controller-runtime's work-queue buckets. */
export const workQueueBuckets: readonly number[] = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);

/** controller-runtime's `controller_runtime_reconcile_time_seconds` buckets. */
export const reconcileBuckets: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0,
  2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
