/**
 * control-plane-scale: how fast and how lean one operator process makes N Integrations Ready,
 * against the raw limit of the same API server and NATS in the same run.
 *
 * Phases, all against one local control plane (etcd + kube-apiserver + nats-server):
 * 1. warm-up — a small floor run, untimed and deleted, so neither measured phase pays for cold
 *    caches in the servers.
 * 2. floor (the raw limit) — no operator running. With the same parallelism as phase 3, for each
 *    object: create it (same CRD, same spec), create its durable JetStream consumer and its
 *    fallback stream (same configs as Ferry's), merge-patch a Ready status. Timed from the first
 *    create until a watch has seen all N Ready. Then the objects, consumers and streams are
 *    deleted, so the operator never sees them and NATS starts phase 3 as it started phase 2.
 * 3. Ferry — one `ferry controller` process (default flags unless FERRY_BENCH_OPERATOR_ARGS);
 *    creates N Integrations with bounded parallelism, timed from the first create until the
 *    watch has seen all N Ready (Ready=True for their generation). The operator's RSS is sampled
 *    throughout, its /metrics every second.
 * 3b. idle — all N Ready, pipelines running, nothing to deliver: after a settling time the
 *    operator's CPU (utime+stime) and the NATS messages of its connection (nats-server /connz) are
 *    measured over a window, with no scrapes or watches asking it anything. Its VmHWM is read
 *    after this phase: the peak with every pipeline running.
 * 4. memory floor — a bare Node process that lists the N objects into a cache, holds a watch and
 *    a NATS connection (lib/cache-floor-process.ts); its VmHWM is the denominator of the memory
 *    ratio.
 *
 * The run ends with issue 11 goal 4's lines: all Ready ≤ 2× floor, peak RSS ≤ 300 MiB (and KB per
 * Integration over the bare cache), idle CPU ≤ 5 % of a core with the NATS messages it causes.
 *
 * Environment: FERRY_BENCH_N (1000; a list such as 100,1000,3000 runs each size on its own control
 * plane), FERRY_BENCH_IDLE_SETTLE_S (10), FERRY_BENCH_IDLE_S (30), FERRY_BENCH_PARALLELISM (32), FERRY_BENCH_TIMEOUT_S (600,
 * per timed phase), FERRY_BENCH_WARMUP (64), FERRY_BENCH_OPERATOR_ARGS (extra `ferry controller`
 * flags, space separated), FERRY_BENCH_LOG_LEVEL (operator log level, default info),
 * FERRY_BENCH_CPU_PROF=1 (the operator writes a V8 CPU profile, summarised in the result),
 * FERRY_BENCH_OPERATOR_FROM (dist: built with tsconfig.build.json and run as the image runs it,
 * the default; src: the TypeScript sources, which carry Node's type stripper — lib/operator-build.ts).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstreamManager,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../test/env/control-plane.ts';
import { installCrds } from '../test/support/crds.ts';
import { integrationSpec, isTrueNow, type FerryObj } from '../test/support/ferry-client.ts';
import { INTEGRATION_RESYNC_MS } from '../src/controller/reconcile-integration.ts';
import { startOperator, type LogLine, type OperatorProcess } from '../test/support/operator-process.ts';
import { summarizeCpuProfile } from './lib/cpu-profile.ts';
import { operatorFrom, operatorMain, type OperatorFrom } from './lib/operator-build.ts';
import { summarizeHeapSnapshot } from './lib/heap-snapshot.ts';
import { measureIdle, type IdleUsage } from './lib/idle-usage.ts';
import { intEnv, intListEnv } from './lib/pipeline-common.ts';
import { RawKube } from './lib/kube-raw.ts';
import { readProcMemory, readProcExe, ProcessSampler, type ProcessUsage } from './lib/proc.ts';
import { parsePrometheusText, sumSamples, type MetricSample } from './lib/prometheus.ts';
import { ReadyWatch } from './lib/ready-watch.ts';
import { RATIOS_GROUP, resultsDir, runBenchmark, type BenchContext } from './lib/result.ts';
import { ratio, summarize, type Summary } from './lib/stats.ts';
import { delay, mapLimit, now } from './lib/timing.ts';

const NAME = 'control-plane-scale';
const GROUP = 'ferry.dev';
const VERSION = 'v1alpha1';
const SOURCE_STREAM = 'CRM_EVENTS';
const MERGE_PATCH = 'application/merge-patch+json';
const NS = { warmup: 'bench-warmup', floor: 'bench-floor', ferry: 'bench-ferry' } as const;

const collection = (namespace: string): string => `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/integrations`;
const objectName = (i: number): string => `ig-${String(i).padStart(5, '0')}`;

interface PhaseResult {
  readonly complete: boolean;
  /** 'all Ready', 'timeout', or why the phase was cut short. */
  readonly endedBy: string;
  readonly readyCount: number;
  /** First create (start of the request) → the watch saw the last object Ready. */
  readonly allReadyMs: number | undefined;
  /** First create → every per-object operation the bench drives has returned. */
  readonly opsMs: number;
  /** Per object: start of its create request → the watch saw it Ready. */
  readonly latency: Summary | undefined;
  readonly stateCounts: Record<string, number>;
  readonly watch: { readonly events: number; readonly restarts: number; readonly relists: number };
  /** 429 answers the API server gave the bench's own requests during the phase (retried). */
  readonly throttled: number;
}

/**
 * Drives `perObject` over N names with bounded parallelism while a watch on the namespace's
 * collection records when each object becomes Ready; resolves when all are Ready or at timeout.
 */
async function drivePhase(options: {
  readonly raw: RawKube;
  readonly namespace: string;
  readonly count: number;
  readonly parallelism: number;
  readonly timeoutMs: number;
  readonly perObject: (name: string, index: number) => Promise<void>;
  readonly ctx: BenchContext;
  readonly onStart?: (watch: ReadyWatch<FerryObj>, t0: number) => void;
  /** Ends the phase early (incomplete) when it resolves, e.g. when the operator exits. */
  readonly abortWhen?: Promise<string>;
}): Promise<PhaseResult> {
  const { ctx, count } = options;
  const watch = new ReadyWatch<FerryObj>({
    raw: options.raw,
    path: collection(options.namespace),
    isReady: (obj) => isTrueNow(obj, 'Ready'),
    log: (m) => {
      ctx.log(m);
    },
  });
  const throttledBefore = options.raw.throttled;
  await watch.start();
  const names = Array.from({ length: count }, (_, i) => objectName(i));
  const startedAt = new Map<string, number>();
  const t0 = now();
  options.onStart?.(watch, t0);
  const progress = setInterval(() => {
    ctx.log(`${options.namespace}: ${startedAt.size}/${count} started, ${watch.readyAt.size}/${count} Ready`);
  }, 10_000);
  try {
    const opsEnd = mapLimit(names, options.parallelism, async (name, i) => {
      startedAt.set(name, now());
      await options.perObject(name, i);
    }).then(() => now());
    // If an operation fails, stop waiting for Ready at once.
    const never = new Promise<never>(() => undefined);
    const outcome = await Promise.race([
      watch.waitForCount(count, options.timeoutMs).then((all) => (all ? 'all Ready' : 'timeout')),
      opsEnd.then(() => never),
      (options.abortWhen ?? never).then((reason) => reason),
    ]);
    const complete = outcome === 'all Ready';
    if (!complete) ctx.log(`${options.namespace}: phase ended: ${outcome}`);
    const opsEndAt = await Promise.race([opsEnd, delay(30_000).then(() => Number.NaN)]);
    const readyTimes = [...watch.readyAt.values()];
    const latencies = [...watch.readyAt].flatMap(([name, at]) => {
      const start = startedAt.get(name);
      return start === undefined ? [] : [at - start];
    });
    return {
      complete,
      endedBy: outcome,
      readyCount: watch.readyAt.size,
      allReadyMs: complete ? Math.max(...readyTimes) - t0 : undefined,
      opsMs: opsEndAt - t0,
      latency: summarize(latencies),
      stateCounts: watch.stateCounts(),
      watch: { events: watch.events, restarts: watch.restarts, relists: watch.relists },
      throttled: options.raw.throttled - throttledBefore,
    };
  } finally {
    clearInterval(progress);
    await watch.stop();
  }
}

/** The status a controller writes for a Ready Integration; the same four conditions as Ferry's. */
function readyStatus(generation: number): Record<string, unknown> {
  const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const condition = (type: string, status: string, reason: string, message: string): Record<string, unknown> => ({
    type,
    status,
    reason,
    message,
    observedGeneration: generation,
    lastTransitionTime: at,
  });
  return {
    observedGeneration: generation,
    fallbackPending: 0,
    conditions: [
      condition('Ready', 'True', 'Delivering', 'consuming CRM_EVENTS (crm.deals.closed) through its consumer; fallback stream provisioned'),
      condition('Reconciling', 'False', 'Reconciled', `generation ${generation} reconciled`),
      condition('Stalled', 'False', 'Reconciled', 'configuration is valid'),
      condition('Degraded', 'False', 'Healthy', 'no degradation observed'),
    ],
  };
}

const floorConsumer = (namespace: string, name: string): string => `floor_${namespace}_${name}`;
const floorStream = (namespace: string, name: string): string => `FLOOR_FALLBACK_${namespace}_${name}`;

/**
 * The raw limit for one object: the writes any controller of this CRD must make, with Ferry's own
 * consumer and fallback stream configuration (defaults of integrationSpec()).
 */
async function floorObject(raw: RawKube, jsm: JetStreamManager, namespace: string, name: string): Promise<void> {
  const created = await raw.request<FerryObj>('POST', collection(namespace), {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Integration',
    metadata: { name },
    spec: integrationSpec(),
  });
  await jsm.consumers.add(SOURCE_STREAM, {
    durable_name: floorConsumer(namespace, name),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    filter_subject: 'crm.deals.closed',
    ack_wait: nanos(10_000 + 30_000),
    max_deliver: 5 + 20,
    max_ack_pending: 16 * 8,
    metadata: { 'ferry.dev/integration': `${namespace}/${name}`, 'ferry.dev/generation': '1' },
  });
  await jsm.streams.add({
    name: floorStream(namespace, name),
    subjects: [`bench.floor.${namespace}.${name}`],
    max_age: nanos(14 * 86_400_000),
    duplicate_window: nanos(3_600_000),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
  });
  await raw.request('PATCH', `${collection(namespace)}/${name}/status`, { status: readyStatus(created.metadata.generation ?? 1) }, MERGE_PATCH);
}

/** Deletes what floorObject made, so the next phase starts from the same server state. */
async function cleanFloor(raw: RawKube, jsm: JetStreamManager, namespace: string, count: number, parallelism: number): Promise<void> {
  const names = Array.from({ length: count }, (_, i) => objectName(i));
  await mapLimit(names, parallelism, async (name) => {
    await jsm.consumers.delete(SOURCE_STREAM, floorConsumer(namespace, name)).catch(() => false);
    await jsm.streams.delete(floorStream(namespace, name)).catch(() => false);
  });
  await raw.request('DELETE', collection(namespace));
  for (;;) {
    const list = await raw.request<{ items: unknown[] }>('GET', collection(namespace));
    if (list.items.length === 0) return;
    await delay(200);
  }
}


function reconcileCounts(samples: readonly MetricSample[]): Record<string, number | undefined> {
  const c = { controller: 'integration' };
  const q = { name: 'integration' };
  const count = sumSamples(samples, 'controller_runtime_reconcile_time_seconds_count', c);
  const sum = sumSamples(samples, 'controller_runtime_reconcile_time_seconds_sum', c);
  return {
    total: sumSamples(samples, 'controller_runtime_reconcile_total', c),
    success: sumSamples(samples, 'controller_runtime_reconcile_total', { ...c, result: 'success' }),
    requeueAfter: sumSamples(samples, 'controller_runtime_reconcile_total', { ...c, result: 'requeue_after' }),
    requeue: sumSamples(samples, 'controller_runtime_reconcile_total', { ...c, result: 'requeue' }),
    error: sumSamples(samples, 'controller_runtime_reconcile_total', { ...c, result: 'error' }),
    errorsTotal: sumSamples(samples, 'controller_runtime_reconcile_errors_total', c),
    terminalErrors: sumSamples(samples, 'controller_runtime_terminal_reconcile_errors_total', c),
    meanReconcileMs: count !== undefined && sum !== undefined && count > 0 ? (sum / count) * 1000 : undefined,
    workqueueDepth: sumSamples(samples, 'workqueue_depth', q),
    workqueueAdds: sumSamples(samples, 'workqueue_adds_total', q),
    workqueueRetries: sumSamples(samples, 'workqueue_retries_total', q),
    watchEvents: sumSamples(samples, 'ferry_watch_events_total', { resource: 'integrations' }),
    kubeEvents: sumSamples(samples, 'ferry_kube_events_total'),
  };
}

interface MetricsPoint {
  /** Milliseconds since the first create. */
  readonly t: number;
  readonly ready: number;
  /** How long /metrics took to answer: the operator's event loop answers it. */
  readonly scrapeMs: number;
  readonly depth: number | undefined;
  readonly reconciles: number | undefined;
  readonly errors: number | undefined;
  readonly active: number | undefined;
  readonly rssBytes: number | undefined;
  /** prom-client's default process metrics (prefix ferry_process_). */
  readonly heapUsedBytes: number | undefined;
  readonly heapTotalBytes: number | undefined;
  readonly externalBytes: number | undefined;
  readonly eventLoopLagP99Ms: number | undefined;
}

/**
 * Scrapes the operator's /metrics once a second (5 s timeout each) and keeps a timeline of the
 * work queue, reconcile counts, Ready count and RSS, and how long each scrape took to answer —
 * a blocked event loop shows up there first.
 */
class MetricsPoller {
  readonly timeline: MetricsPoint[] = [];
  lastSamples: MetricSample[] | undefined;
  /** Monotonic time the last answered scrape began. */
  lastScrapeAt: number | undefined;
  peakDepth = 0;
  scrapeFailures = 0;
  private readonly scrapeTimes: number[] = [];
  private readonly stopper = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  private readonly url: string;
  private readonly pid: number;
  private readonly ctx: BenchContext;

  constructor(port: number, pid: number, ctx: BenchContext) {
    this.url = `http://127.0.0.1:${port}/metrics`;
    this.pid = pid;
    this.ctx = ctx;
  }

  start(t0: number, ready: () => number): void {
    this.loop = (async () => {
      let lastLog = now();
      while (!this.stopper.signal.aborted) {
        const began = now();
        const samples = await this.scrape();
        if (samples) {
          const counts = reconcileCounts(samples);
          const point: MetricsPoint = {
            t: Math.round(began - t0),
            ready: ready(),
            scrapeMs: Math.round(now() - began),
            depth: counts.workqueueDepth,
            reconciles: counts.total,
            errors: counts.errorsTotal,
            active: sumSamples(samples, 'controller_runtime_active_workers', { controller: 'integration' }),
            rssBytes: readProcMemory(this.pid)?.rssBytes,
            ...processMetrics(samples),
          };
          this.timeline.push(point);
          this.peakDepth = Math.max(this.peakDepth, point.depth ?? 0);
          if (now() - lastLog >= 10_000) {
            lastLog = now();
            this.ctx.log(
              `ferry: workqueue depth ${String(point.depth)}, reconciles ${String(point.reconciles)}, errors ${String(point.errors)}, RSS ${fmtBytes(point.rssBytes)}, /metrics answered in ${point.scrapeMs} ms`,
            );
          }
        }
        if (!samples && now() - lastLog >= 10_000) {
          lastLog = now();
          this.ctx.log(`ferry: /metrics did not answer within 5 s (${this.scrapeFailures} failed scrapes so far): the operator's event loop is blocked`);
        }
        await delay(Math.max(0, 1000 - (now() - began)), this.stopper.signal).catch(() => undefined);
      }
    })();
  }

  /** One scrape; undefined when it failed or took more than 5 s. */
  async scrape(): Promise<MetricSample[] | undefined> {
    const began = now();
    try {
      const res = await fetch(this.url, { signal: AbortSignal.timeout(5000) });
      const samples = parsePrometheusText(await res.text());
      this.scrapeTimes.push(now() - began);
      this.lastSamples = samples;
      this.lastScrapeAt = began;
      return samples;
    } catch {
      this.scrapeFailures++;
      return undefined;
    }
  }

  scrapeSummary(): Summary | undefined {
    return summarize(this.scrapeTimes);
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }
}

function processMetrics(samples: readonly MetricSample[]): Pick<MetricsPoint, 'heapUsedBytes' | 'heapTotalBytes' | 'externalBytes' | 'eventLoopLagP99Ms'> {
  const lag = sumSamples(samples, 'ferry_process_nodejs_eventloop_lag_p99_seconds');
  return {
    heapUsedBytes: sumSamples(samples, 'ferry_process_nodejs_heap_size_used_bytes'),
    heapTotalBytes: sumSamples(samples, 'ferry_process_nodejs_heap_size_total_bytes'),
    externalBytes: sumSamples(samples, 'ferry_process_nodejs_external_memory_bytes'),
    eventLoopLagP99Ms: lag === undefined ? undefined : lag * 1000,
  };
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}

/** Counts of the operator's log lines by level and by message, warnings and errors with their error codes. */
function summarizeLogs(lines: readonly LogLine[]): {
  lines: number;
  byLevel: Record<string, number>;
  topMessages: Record<string, number>;
  warningsAndErrors: Record<string, number>;
} {
  const byLevel: Record<string, number> = {};
  const byMessage: Record<string, number> = {};
  const problems: Record<string, number> = {};
  for (const line of lines) {
    const level = text(line.level) || 'unknown';
    byLevel[level] = (byLevel[level] ?? 0) + 1;
    const msg = line.msg ?? '';
    byMessage[msg] = (byMessage[msg] ?? 0) + 1;
    if (level === 'warn' || level === 'error' || level === 'fatal' || level === '40' || level === '50' || level === '60') {
      const err = line.err as { code?: unknown; name?: unknown; message?: unknown } | undefined;
      const key = `${msg} [${text(err?.code) || text(err?.name)}] ${text(err?.message).slice(0, 160)}`;
      problems[key] = (problems[key] ?? 0) + 1;
    }
  }
  const top = (counts: Record<string, number>, n: number): Record<string, number> =>
    Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, n));
  return { lines: lines.length, byLevel, topMessages: top(byMessage, 15), warningsAndErrors: top(problems, 15) };
}

function cores(usage: ProcessUsage | undefined): number | undefined {
  return usage?.cpuSeconds === undefined || usage.wallSeconds <= 0 ? undefined : usage.cpuSeconds / usage.wallSeconds;
}

function serverPids(env: ControlPlane): Record<string, number | undefined> {
  return { apiServer: env.processes.apiServer?.pid, etcd: env.processes.etcd?.pid, nats: env.processes.nats?.pid };
}

interface MemoryFloor {
  readonly objects: number;
  readonly rssBytes: number | null;
  readonly hwmBytes: number | null;
}

/** Runs lib/cache-floor-process.ts once; `withClientNode` also loads @kubernetes/client-node in it. */
async function measureMemoryFloor(env: ControlPlane, endpointFile: string, withClientNode: boolean): Promise<MemoryFloor> {
  const script = join(import.meta.dirname, 'lib', 'cache-floor-process.ts');
  const { stdout } = await promisify(execFile)(process.execPath, [script], {
    env: {
      ...process.env,
      FLOOR_ENDPOINT: endpointFile,
      FLOOR_PATH: collection(NS.ferry),
      FLOOR_NATS_URL: env.natsUrl,
      FLOOR_LOAD_CLIENT_NODE: withClientNode ? '1' : '0',
    },
    timeout: 60_000,
  });
  const last = stdout.trim().split('\n').pop() ?? '{}';
  return JSON.parse(last) as MemoryFloor;
}

/** What one size's run says about issue 11 goal 4. */
interface SizeOutcome {
  readonly n: number;
  readonly complete: boolean;
  readonly allReadyRatio: number | undefined;
  readonly hwmBytes: number | undefined;
  readonly bareHwmBytes: number | undefined;
  readonly idle: IdleUsage | undefined;
}

interface BenchSettings {
  readonly parallelism: number;
  readonly timeoutMs: number;
  readonly warmupMax: number;
  readonly operatorArgs: readonly string[];
  /** Node/V8 flags for the operator only, on its command line (FERRY_BENCH_OPERATOR_NODE_FLAGS). */
  readonly operatorNodeFlags: readonly string[];
  readonly logLevel: string;
  /** What runs: the build the image ships (dist/, the default) or the sources. */
  readonly operatorFrom: OperatorFrom;
  /** Its entry point, built once for every size. */
  readonly operatorMain: string;
  readonly cpuProfile: boolean;
  readonly heapSnapshot: boolean;
  readonly idleSettleMs: number;
  readonly idleWindowMs: number;
}

async function bench(ctx: BenchContext): Promise<'complete' | 'incomplete'> {
  // Several sizes (FERRY_BENCH_N=100,1000,3000) run one after the other, each on its own control
  // plane, so the growth per Integration is visible in one result.
  const sizes = intListEnv('FERRY_BENCH_N', [1000]);
  const from = operatorFrom();
  const settings: BenchSettings = {
    parallelism: intEnv('FERRY_BENCH_PARALLELISM', 32),
    timeoutMs: intEnv('FERRY_BENCH_TIMEOUT_S', 600) * 1000,
    warmupMax: intEnv('FERRY_BENCH_WARMUP', 64),
    operatorArgs: (process.env.FERRY_BENCH_OPERATOR_ARGS ?? '').split(/\s+/).filter((a) => a !== ''),
    operatorNodeFlags: (process.env.FERRY_BENCH_OPERATOR_NODE_FLAGS ?? '').split(/\s+/).filter((a) => a !== ''),
    logLevel: process.env.FERRY_BENCH_LOG_LEVEL ?? 'info',
    operatorFrom: from,
    operatorMain: await operatorMain(from),
    cpuProfile: process.env.FERRY_BENCH_CPU_PROF === '1',
    heapSnapshot: process.env.FERRY_BENCH_HEAP_SNAPSHOT === '1',
    idleSettleMs: intEnv('FERRY_BENCH_IDLE_SETTLE_S', 10) * 1000,
    // A minute: every pull renewal (30 s) and fallback count (60 s) falls in it. The safety-net
    // re-check (INTEGRATION_RESYNC_MS) is rarer; its rate is printed beside the figures.
    idleWindowMs: intEnv('FERRY_BENCH_IDLE_S', 60) * 1000,
  };
  Object.assign(ctx.params, {
    n: sizes.join(','),
    parallelism: settings.parallelism,
    timeoutS: settings.timeoutMs / 1000,
    warmup: settings.warmupMax,
    operatorArgs: settings.operatorArgs.join(' ') || '(defaults)',
    operatorNodeFlags: settings.operatorNodeFlags.join(' ') || '(none)',
    operatorLogLevel: settings.logLevel,
    operatorFrom: settings.operatorFrom,
    operatorCpuProfile: settings.cpuProfile,
    idleSettleS: settings.idleSettleMs / 1000,
    idleS: settings.idleWindowMs / 1000,
  });
  const outcomes: SizeOutcome[] = [];
  for (const n of sizes) {
    const scoped = sizes.length === 1 ? ctx : sizeContext(ctx, n);
    outcomes.push(await benchSize(scoped, n, settings));
  }
  const lines = goalLines(outcomes);
  for (const line of lines) ctx.log(line);
  ctx.notes.unshift(...lines);
  return outcomes.every((o) => o.complete) ? 'complete' : 'incomplete';
}

/** One size's figures, keys and details kept apart from the other sizes' (`n100.…`). */
function sizeContext(ctx: BenchContext, n: number): BenchContext {
  const details: Record<string, unknown> = {};
  ctx.details[`n${n}`] = details;
  return {
    params: ctx.params,
    details,
    notes: ctx.notes,
    figure: (group, key, label, value, unit, note) => {
      ctx.figure(group === RATIOS_GROUP ? RATIOS_GROUP : `${group} [N = ${n}]`, `n${n}.${key}`, group === RATIOS_GROUP ? `${label} (N = ${n})` : label, value, unit, note);
    },
    log: (message) => {
      ctx.log(`[N = ${n}] ${message}`);
    },
  };
}

const verdict = (met: boolean | undefined): string => (met === undefined ? 'unknown' : met ? 'met' : 'not met');
const MIB = 1024 * 1024;

/** Issue 11 goal 4 as the issue states it, from each size's run. */
function goalLines(outcomes: readonly SizeOutcome[]): string[] {
  const lines: string[] = [];
  for (const o of outcomes) {
    const at = outcomes.length === 1 ? '' : ` [N = ${o.n}]`;
    const r = o.allReadyRatio;
    lines.push(`goal 4${at}: all Ready ≤ 2× floor: ${verdict(r === undefined ? undefined : r <= 2)} (${r?.toFixed(2) ?? '—'})`);
    const hwm = o.hwmBytes;
    const perIntegrationKb = hwm === undefined || o.bareHwmBytes === undefined ? undefined : (hwm - o.bareHwmBytes) / o.n / 1024;
    lines.push(
      `goal 4${at}: peak RSS ≤ 300 MiB: ${verdict(hwm === undefined ? undefined : hwm <= 300 * MIB)} (${hwm === undefined ? '—' : (hwm / MIB).toFixed(0)} MiB; ${perIntegrationKb?.toFixed(0) ?? '—'} KB per Integration over the bare cache of ${o.bareHwmBytes === undefined ? '—' : (o.bareHwmBytes / MIB).toFixed(0)} MiB, aim ≤ 150)`,
    );
    const idle = o.idle;
    lines.push(
      `goal 4${at}: idle CPU ≤ 5% of a core with ${o.n} idle Integrations: ${verdict(idle?.cores === undefined ? undefined : idle.cores <= 0.05)} (${idle?.cores === undefined ? '—' : (idle.cores * 100).toFixed(1)} %; NATS requests/s from the operator: ${idle?.natsSentPerSecond?.toFixed(1) ?? '—'}, messages/s to it: ${idle?.natsReceivedPerSecond?.toFixed(1) ?? '—'})`,
    );
  }
  return lines;
}

async function benchSize(ctx: BenchContext, n: number, settings: BenchSettings): Promise<SizeOutcome> {
  const { parallelism, timeoutMs, operatorArgs, logLevel, cpuProfile } = settings;
  const warmup = Math.min(n, settings.warmupMax);

  let env: ControlPlane | undefined;
  let nc: NatsConnection | undefined;
  let raw: RawKube | undefined;
  let op: OperatorProcess | undefined;
  try {
    ctx.log('starting etcd, kube-apiserver and nats-server');
    env = await startControlPlane({ natsMonitor: true });
    await installCrds(env.kubeConfig);
    raw = await RawKube.create(env.kubeConfig, { connections: parallelism + 4 });
    for (const namespace of Object.values(NS)) {
      await raw.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    }
    nc = await connect({ servers: env.natsUrl });
    const jsm = await jetstreamManager(nc);
    // nats-server 2.15 gives a stream 1,000 consumers at most unless the stream sets its own
    // limit, and every Integration is one durable consumer on its source stream: a platform team
    // with more Integrations on one stream sets max_consumers, as this does (docs/operations.md).
    await jsm.streams.add({ name: SOURCE_STREAM, subjects: ['crm.>'], max_consumers: Math.max(1_000, n + warmup + 100) });
    const version = await raw.request<{ gitVersion?: string }>('GET', '/version');
    ctx.details.servers = { kubeApiServer: version.gitVersion, nats: nc.info?.version };

    // 1. Warm-up.
    ctx.log(`warm-up: ${warmup} objects through the floor path`);
    const rawKube = raw;
    await drivePhase({
      raw,
      namespace: NS.warmup,
      count: warmup,
      parallelism,
      timeoutMs,
      ctx,
      perObject: (name) => floorObject(rawKube, jsm, NS.warmup, name),
    });
    await cleanFloor(raw, jsm, NS.warmup, warmup, parallelism);

    // 2. Floor.
    ctx.log(`floor: ${n} objects × (create, consumer, stream, status patch), ${parallelism} in flight, no operator`);
    const floorSampler = new ProcessSampler(serverPids(env)).start();
    const floor = await drivePhase({
      raw,
      namespace: NS.floor,
      count: n,
      parallelism,
      timeoutMs,
      ctx,
      perObject: (name) => floorObject(rawKube, jsm, NS.floor, name),
    });
    const floorUsage = floorSampler.stop();
    ctx.details.floor = { ...floor, serverUsage: withoutTimelines(floorUsage) };
    ctx.log(`floor: all ${floor.readyCount} Ready in ${fmtMs(floor.allReadyMs)}`);
    ctx.log('floor: deleting its objects, consumers and streams');
    await cleanFloor(raw, jsm, NS.floor, n, parallelism);

    // 3. Ferry.
    ctx.log(`ferry: starting one operator ${operatorArgs.join(' ')}`.trim());
    // FERRY_BENCH_CPU_PROF=1: the operator writes a V8 CPU profile when it stops (graceful stop).
    const profileDir = join(resultsDir, 'profiles');
    const profileName = `${NAME}.operator.cpuprofile`;
    // On the command line: NODE_OPTIONS refuses most V8 flags.
    const nodeFlags = [
      ...settings.operatorNodeFlags,
      ...(cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${profileName}`] : []),
      // FERRY_BENCH_HEAP_SNAPSHOT=1: a heap snapshot at the end of the idle phase (SIGUSR2).
      ...(settings.heapSnapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${profileDir}`] : []),
    ];
    op = await startOperator({ env, identity: 'bench', args: operatorArgs, nodeFlags, main: settings.operatorMain, envVars: { FERRY_LOG_LEVEL: logLevel } });
    const pid = op.process.pid;
    // The operator runs under `setpriv --pdeathsig`, which execs node: the pid must be node's own.
    const exe = pid === undefined ? undefined : readProcExe(pid);
    if (pid === undefined || exe !== realpathSync(process.execPath)) throw new Error(`operator pid ${String(pid)} is not a node process (${String(exe)})`);
    await op.waitForLog((l) => l.msg === 'controller started' && l.controller === 'integration', 60_000);
    const startupHwm = readProcMemory(pid)?.hwmBytes;
    const sampler = new ProcessSampler({ operator: pid, ...serverPids(env) }).start();
    const poller = new MetricsPoller(op.httpPort, pid, ctx);
    let ferryT0 = now();
    const exited = op.process.exited().then((code) => `the operator exited (code ${String(code)})`);
    ctx.log(`ferry: creating ${n} Integrations, ${parallelism} in flight`);
    const ferry = await drivePhase({
      raw,
      namespace: NS.ferry,
      count: n,
      parallelism,
      timeoutMs,
      ctx,
      abortWhen: exited,
      perObject: async (name) => {
        await rawKube.request('POST', collection(NS.ferry), { apiVersion: `${GROUP}/${VERSION}`, kind: 'Integration', metadata: { name }, spec: integrationSpec() });
      },
      onStart: (watch, t0) => {
        ferryT0 = t0;
        poller.start(t0, () => watch.readyAt.size);
      },
    });
    // The metrics that describe the run up to all-Ready: scraped now, before any periodic requeue.
    const readySamples = (await poller.scrape()) ?? poller.lastSamples ?? [];
    await poller.stop();
    const usage = sampler.stop();
    const hwmAtReady = readProcMemory(pid)?.hwmBytes ?? usage.operator?.hwmBytes;
    const countsAtReady = reconcileCounts(readySamples);
    // Idle: every pipeline running, nothing to deliver, nobody asking (no scrapes, no watch).
    let idle: IdleUsage | undefined;
    let idleReconciles: number | undefined;
    if (ferry.complete && op.process.running) {
      ctx.log(`idle: ${settings.idleSettleMs / 1000} s to settle, then ${settings.idleWindowMs / 1000} s measured`);
      await delay(settings.idleSettleMs);
      const before = reconcileCounts((await poller.scrape()) ?? []);
      idle = await measureIdle({ pid, monitorUrl: env.natsMonitorUrl, connectionName: 'ferry-bench', windowMs: settings.idleWindowMs, census: nc });
      const after = reconcileCounts((await poller.scrape()) ?? []);
      idleReconciles = before.total === undefined || after.total === undefined ? undefined : (after.total - before.total) / (idle.windowMs / 1000);
      ctx.details.idle = { ...idle, reconcilesPerSecond: idleReconciles, kubeEventsDuring: (after.kubeEvents ?? 0) - (before.kubeEvents ?? 0) };
      const top = (idle.subjects ?? []).slice(0, 8).map((s) => `${s.kind} ${s.perSecond.toFixed(1)}/s`);
      if (top.length > 0) ctx.notes.push(`idle NATS messages by subject (whole account, ${n} Integrations): ${top.join('; ')}`);
    }
    // Read after the idle phase: the peak with all N pipelines running, whenever it came.
    const hwmBytes = readProcMemory(pid)?.hwmBytes ?? hwmAtReady;
    // After the peak is read: writing a snapshot makes the operator's RSS jump.
    if (idle !== undefined && settings.heapSnapshot) await takeHeapSnapshot(ctx, pid, profileDir);
    const operatorAlive = op.process.running;
    if (!operatorAlive) {
      ctx.notes.push(`${await exited}; last log lines: ${op.process.tail().slice(-2000)}`);
    }
    const logs = summarizeLogs(op.logs);
    const operatorLogCopy = join(resultsDir, `${NAME}.operator.log`);
    ctx.log('ferry: stopping the operator');
    await op.stop();
    op = undefined;
    try {
      copyFileSync(join(env.dir, 'operator-bench.log'), operatorLogCopy);
    } catch (err) {
      ctx.log(`could not copy the operator log: ${err instanceof Error ? err.message : String(err)}`);
    }

    if (cpuProfile) {
      const path = join(profileDir, profileName);
      try {
        const summary = summarizeCpuProfile(path);
        ctx.details.operatorCpuProfile = { path, ...summary };
        ctx.notes.push(
          `operator CPU profile (${path}), self time by module: ${summary.byModule
            .slice(0, 8)
            .map((h) => `${h.name} ${h.percent}%`)
            .join(', ')}`,
        );
      } catch (err) {
        ctx.log(`could not read the CPU profile: ${err instanceof Error ? err.message : String(err)}`);
      }
    }

    // 4. Memory floor.
    ctx.log('memory floor: a bare Node process caching the same objects');
    // The endpoint file holds a client key: it lives in the control plane's temp dir, removed at stop.
    const endpointFile = join(env.dir, 'bench-endpoint.json');
    writeFileSync(endpointFile, JSON.stringify(await RawKube.endpointOf(env.kubeConfig)), { mode: 0o600 });
    const memoryFloor = await measureMemoryFloor(env, endpointFile, false);
    const memoryFloorClientNode = await measureMemoryFloor(env, endpointFile, true);

    // Figures.
    const ferrySeconds = (ferry.allReadyMs ?? Number.NaN) / 1000;
    const floorSeconds = (floor.allReadyMs ?? Number.NaN) / 1000;
    const operatorUsage = usage.operator;
    ctx.figure(RATIOS_GROUP, 'ratio.allReady', 'time to all Ready: Ferry ÷ floor', ratio(ferry.allReadyMs, floor.allReadyMs), 'ratio');
    ctx.figure(RATIOS_GROUP, 'ratio.latencyP50', 'create→Ready p50: Ferry ÷ floor', ratio(ferry.latency?.p50, floor.latency?.p50), 'ratio');
    ctx.figure(RATIOS_GROUP, 'ratio.latencyP99', 'create→Ready p99: Ferry ÷ floor', ratio(ferry.latency?.p99, floor.latency?.p99), 'ratio');
    ctx.figure(RATIOS_GROUP, 'ratio.peakRss', 'peak RSS: operator ÷ bare Node cache', ratio(hwmBytes, memoryFloor.hwmBytes ?? undefined), 'ratio', 'VmHWM ÷ VmHWM');

    const F = `Ferry: ${n} Integrations, one operator`;
    ctx.figure(F, 'ferry.allReadyMs', 'first create → all Ready', ferry.allReadyMs, 'ms', ferry.complete ? undefined : `only ${ferry.readyCount}/${n} Ready at timeout`);
    ctx.figure(F, 'ferry.readyCount', 'Ready at the end of the phase', ferry.readyCount, 'count');
    ctx.figure(F, 'ferry.benchThrottled', 'HTTP 429s to the bench’s creates (retried)', ferry.throttled, 'count');
    ctx.figure(F, 'ferry.createsMs', 'first create → last create returned', ferry.opsMs, 'ms');
    ctx.figure(F, 'ferry.latencyP50', 'create→Ready p50', ferry.latency?.p50, 'ms');
    ctx.figure(F, 'ferry.latencyP90', 'create→Ready p90', ferry.latency?.p90, 'ms');
    ctx.figure(F, 'ferry.latencyP99', 'create→Ready p99', ferry.latency?.p99, 'ms');
    ctx.figure(F, 'ferry.latencyMax', 'create→Ready max', ferry.latency?.max, 'ms');
    ctx.figure(F, 'ferry.readyPerSecond', 'objects made Ready per second', n / ferrySeconds, 'per_second');
    ctx.figure(F, 'ferry.reconcilesPerSecond', 'reconciles per second (to all Ready)', (countsAtReady.total ?? Number.NaN) / ferrySeconds, 'per_second');
    ctx.figure(F, 'ferry.peakRssBytes', 'operator peak RSS (VmHWM)', hwmBytes, 'bytes', 'read after the idle phase: every pipeline running');
    ctx.figure(F, 'ferry.peakRssAtReadyBytes', 'operator VmHWM when all were Ready', hwmAtReady, 'bytes');
    ctx.figure(F, 'ferry.kbPerIntegration', 'KB per Integration over the bare cache', hwmBytes === undefined || memoryFloor.hwmBytes === null ? undefined : (hwmBytes - memoryFloor.hwmBytes) / n / 1024, 'count', '(operator VmHWM − bare cache VmHWM) ÷ N, KiB');
    ctx.figure(F, 'ferry.peakSampledRssBytes', 'operator peak sampled VmRSS', operatorUsage?.peakSampledRssBytes, 'bytes', `${String(operatorUsage?.samples)} samples`);
    ctx.figure(F, 'ferry.startupRssBytes', 'operator VmHWM before the first create', startupHwm, 'bytes');
    const heap = processMetrics(readySamples);
    ctx.figure(F, 'ferry.heapUsedBytes', 'V8 heap used (last answered scrape)', heap.heapUsedBytes, 'bytes', `of ${fmtBytes(heap.heapTotalBytes)} heap; ${fmtBytes(heap.externalBytes)} external`);
    ctx.figure(F, 'ferry.eventLoopLagP99Max', 'event-loop lag p99, worst 1 s sample', maxOf(poller.timeline.map((p) => p.eventLoopLagP99Ms)), 'ms', `the operator’s own metric; ${poller.timeline.length} answered scrapes`);
    ctx.figure(F, 'ferry.operatorCpu', 'operator CPU during the phase', operatorUsage?.cpuSeconds, 'cpu_seconds');
    ctx.figure(F, 'ferry.operatorCores', 'operator mean CPU use', cores(operatorUsage), 'cores');

    const lastScrapeS = poller.lastScrapeAt === undefined ? '—' : ((poller.lastScrapeAt - ferryT0) / 1000).toFixed(0);
    const M = `operator metrics (integration controller) ${
      ferry.complete ? 'at all-Ready' : `at the last answered scrape (t = ${lastScrapeS} s; the phase ended: ${ferry.endedBy})`
    }`;
    ctx.figure(M, 'metrics.reconcileTotal', 'controller_runtime_reconcile_total', countsAtReady.total, 'count', `${((countsAtReady.total ?? 0) / n).toFixed(2)} per object`);
    ctx.figure(M, 'metrics.reconcileSuccess', '  result=success', countsAtReady.success, 'count');
    ctx.figure(M, 'metrics.reconcileRequeueAfter', '  result=requeue_after', countsAtReady.requeueAfter, 'count');
    ctx.figure(M, 'metrics.reconcileRequeue', '  result=requeue', countsAtReady.requeue, 'count');
    ctx.figure(M, 'metrics.reconcileError', '  result=error', countsAtReady.error, 'count');
    ctx.figure(M, 'metrics.reconcileErrorsTotal', 'controller_runtime_reconcile_errors_total', countsAtReady.errorsTotal, 'count');
    ctx.figure(M, 'metrics.meanReconcileMs', 'mean reconcile time', countsAtReady.meanReconcileMs, 'ms');
    ctx.figure(M, 'metrics.workqueueAdds', 'workqueue_adds_total', countsAtReady.workqueueAdds, 'count');
    ctx.figure(M, 'metrics.workqueueRetries', 'workqueue_retries_total', countsAtReady.workqueueRetries, 'count');
    ctx.figure(M, 'metrics.workqueuePeakDepth', 'workqueue_depth, peak of 1 s samples', poller.peakDepth, 'count');
    ctx.figure(M, 'metrics.scrapeP50', '/metrics answer time p50 (event-loop lag proxy)', poller.scrapeSummary()?.p50, 'ms');
    ctx.figure(M, 'metrics.scrapeMax', '/metrics answer time max', poller.scrapeSummary()?.max, 'ms', `${poller.scrapeFailures} scrapes failed or timed out (5 s)`);
    ctx.figure(M, 'metrics.kubeEvents', 'Kubernetes Events recorded', countsAtReady.kubeEvents, 'count');

    const L = `raw limit (floor): ${n} objects, no operator`;
    ctx.figure(L, 'floor.allReadyMs', 'first create → all Ready', floor.allReadyMs, 'ms');
    ctx.figure(L, 'floor.latencyP50', 'create→Ready p50', floor.latency?.p50, 'ms');
    ctx.figure(L, 'floor.latencyP99', 'create→Ready p99', floor.latency?.p99, 'ms');
    ctx.figure(L, 'floor.benchThrottled', 'HTTP 429s to the bench’s requests (retried)', floor.throttled, 'count');
    ctx.figure(L, 'floor.readyPerSecond', 'objects made Ready per second', n / floorSeconds, 'per_second');
    ctx.figure(L, 'floor.memoryHwmBytes', 'bare Node process caching them: VmHWM', memoryFloor.hwmBytes ?? undefined, 'bytes', `${memoryFloor.objects} objects, a watch, NATS`);
    ctx.figure(L, 'floor.memoryClientNodeHwmBytes', '  the same + @kubernetes/client-node loaded', memoryFloorClientNode.hwmBytes ?? undefined, 'bytes', 'as the operator loads it (no generated APIs)');

    const I = `idle: ${n} Ready Integrations, nothing to deliver (${settings.idleWindowMs / 1000} s after ${settings.idleSettleMs / 1000} s to settle)`;
    ctx.figure(I, 'idle.operatorCores', 'operator CPU use', idle?.cores, 'cores', 'utime+stime ÷ wall time');
    ctx.figure(I, 'idle.natsSentPerSecond', 'NATS messages/s the operator sends', idle?.natsSentPerSecond, 'per_second', 'in_msgs of its connection (/connz): requests, pulls, acks');
    ctx.figure(I, 'idle.natsReceivedPerSecond', 'NATS messages/s sent to the operator', idle?.natsReceivedPerSecond, 'per_second', 'out_msgs: heartbeats, replies');
    ctx.figure(I, 'idle.reconcilesPerSecond', 'reconciles per second', idleReconciles, 'per_second', `in the window; in steady state N ÷ ${INTEGRATION_RESYNC_MS / 1000} s re-checks`);

    const S = 'servers: mean CPU use (floor phase → Ferry phase)';
    for (const server of ['apiServer', 'etcd', 'nats'] as const) {
      ctx.figure(S, `servers.${server}.floorCores`, `${server}, floor`, cores(floorUsage[server]), 'cores');
      ctx.figure(S, `servers.${server}.ferryCores`, `${server}, Ferry`, cores(usage[server]), 'cores');
    }

    ctx.details.ferry = {
      ...ferry,
      metricsAtReady: countsAtReady,
      usage: withoutTimelines(usage),
      timeline: poller.timeline,
      rssTimeline: operatorUsage?.timeline ?? [],
      logs,
      operatorLog: operatorLogCopy,
    };
    ctx.details.memoryFloor = { bare: memoryFloor, withClientNode: memoryFloorClientNode };
    ctx.notes.push(
      `floor per object: create + JetStream consumer create + stream create + status merge patch (${parallelism} objects in flight); Ferry: ${parallelism} creates in flight, the operator with ${operatorArgs.join(' ') || 'its default flags'}`,
      'all timings end when the bench’s watch on the collection saw the object Ready=True for its generation',
      'the bench process, the servers and the operator share this machine’s cores',
    );
    const problems = Object.entries(logs.warningsAndErrors);
    if (problems.length > 0) {
      ctx.notes.push(
        `operator warnings/errors (count × message [error code] error): ${problems
          .slice(0, 6)
          .map(([m, c]) => `${c} × ${m}`)
          .join(' | ')}`,
      );
    }
    if (!ferry.complete) {
      ctx.notes.push(`Ferry made ${ferry.readyCount}/${n} Ready within ${timeoutMs / 1000} s; last seen states: ${JSON.stringify(ferry.stateCounts)}`);
    }
    return {
      n,
      complete: floor.complete && ferry.complete,
      allReadyRatio: ratio(ferry.allReadyMs, floor.allReadyMs),
      hwmBytes,
      bareHwmBytes: memoryFloor.hwmBytes ?? undefined,
      idle,
    };
  } finally {
    await op?.stop().catch(() => undefined);
    await raw?.close().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await env?.stop();
  }
}

/** Has the operator write a heap snapshot (SIGUSR2) and summarises it into the result. */
async function takeHeapSnapshot(ctx: BenchContext, pid: number, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  const deadline = now() + 120_000;
  let path: string | undefined;
  let lastSize = -1;
  while (now() < deadline) {
    await delay(1_000);
    const name = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (name === undefined) continue;
    path = join(dir, name);
    // Written in one go by the operator's main thread; done when the size stops changing.
    const size = statSync(path).size;
    if (size === lastSize && size > 0) break;
    lastSize = size;
  }
  if (path === undefined) {
    ctx.log('no heap snapshot appeared within 120 s');
    return;
  }
  const summary = summarizeHeapSnapshot(path);
  ctx.details.heapSnapshot = { path, ...summary };
  ctx.notes.push(
    `operator heap snapshot after the idle phase (${path}): ${(summary.totalBytes / MIB).toFixed(0)} MiB live; largest by self size: ${summary.top
      .slice(0, 10)
      .map((g) => `${g.name} ${(g.selfBytes / MIB).toFixed(1)} MiB ×${g.count}`)
      .join(', ')}`,
  );
}

function withoutTimelines(usage: Record<string, ProcessUsage>): Record<string, Omit<ProcessUsage, 'timeline'>> {
  return Object.fromEntries(Object.entries(usage).map(([name, { timeline: _timeline, ...rest }]) => [name, rest]));
}

function maxOf(values: readonly (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length === 0 ? undefined : Math.max(...known);
}

function fmtMs(ms: number | undefined): string {
  return ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`;
}

function fmtBytes(bytes: number | undefined): string {
  return bytes === undefined ? '—' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

await runBenchmark({ name: NAME, title: 'N Integrations to Ready with one operator, against the raw API server + NATS limit' }, bench);
