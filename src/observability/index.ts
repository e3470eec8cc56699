export { systemClock, ManualClock, type Clock } from './clock.ts';
export { untilAborted } from './abort.ts';
export { createLogger, silentLogger, redactPaths, type Logger, type LoggerOptions } from './logger.ts';
export { createRegistry, logLinesDroppedCounter, Registry, Counter, Gauge, Histogram } from './metrics.ts';
export { LocalHistogram, type HistogramSeries } from './local-histogram.ts';
export {
  createLogDestination,
  DEFAULT_LOG_BUFFER_BYTES,
  DEFAULT_DROP_NOTICE_MS,
  type LogDestination,
  type LogDestinationOptions,
} from './log-destination.ts';
export { HealthRegistry, type HealthCheck, type HealthReport } from './health.ts';
export { serveOperatorEndpoints, type OperatorEndpoints } from './http-server.ts';
