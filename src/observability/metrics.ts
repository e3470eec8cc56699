/**
 * Prometheus metrics. One `Registry` per process, created by the composition root and passed to
 * the parts that record metrics — no global default registry, so tests can run several
 * operators in one process without their counters mixing.
 */
import { Registry, collectDefaultMetrics, Counter, Gauge } from 'prom-client';

export { Registry, Counter, Gauge, Histogram } from 'prom-client';

export function createRegistry(options: { version: string; defaultMetrics?: boolean }): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'ferry_process_' });
  const build = new Gauge({
    name: 'ferry_build_info',
    help: 'Ferry build information; the value is always 1.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  });
  build.set({ version: options.version, node_version: process.versions.node }, 1);
  return registry;
}

/**
 * `ferry_log_lines_dropped_total`: log lines the bounded stdout destination dropped because
 * stdout was not read fast enough (see log-destination.ts). Registered once per process by the
 * composition root; exported at 0 from the start, so an alert can use it before any drop.
 */
export function logLinesDroppedCounter(registry: Registry): Counter {
  return new Counter({
    name: 'ferry_log_lines_dropped_total',
    help: 'Log lines dropped because stdout was not read fast enough (its buffer was full).',
    registers: [registry],
  });
}
