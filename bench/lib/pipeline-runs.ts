/**
 * The runs of the Integration pipeline benchmark (bench/pipeline.bench.ts): Ferry runs (backlog
 * and paced), the floors' runs, and what they share — publishing, waiting on the sink while
 * measuring CPU, a quiet machine, re-running a disturbed run, cleaning up between runs.
 *
 * Every run leaves the servers as it found them: its Integration (or consumer) is deleted and
 * its subject purged from the stream.
 */
import { realpathSync } from 'node:fs';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { integrationConsumerName } from '../../src/nats/index.ts';
import { startControlPlane, type ControlPlane } from '../../test/env/control-plane.ts';
import { installCrds } from '../../test/support/crds.ts';
import { isTrueNow, type FerryObj } from '../../test/support/ferry-client.ts';
import { startOperator, type LogLine, type OperatorProcess } from '../../test/support/operator-process.ts';
import { describeTimeline, startCpuTimeline, type CpuTimeline } from './cpu-timeline.ts';
import { KubeRequestError, RawKube } from './kube-raw.ts';
import { benchEvent, EVENT_SCHEMA, eventKey, FERRY_CONNECTIONS_PER_ORIGIN, ferryLikeConsumer, JSONATA, MAPPING, monoMs } from './pipeline-common.ts';
import { cpuBetween, cpuSnapshot, MAIN_THREAD, waitForQuietMachine, type CpuSnapshot, type CpuWindow } from './pipeline-cpu.ts';
import { startFloor, type FloorConfig, type FloorResult, type FloorRun } from './pipeline-floor-process.ts';
import { startGoWorker } from './pipeline-goworker.ts';
import { startSink, type Sink } from './pipeline-sink.ts';
import { readProcExe, readProcMemory } from './proc.ts';
import { parsePrometheusText, selectSamples, sumSamples, type MetricSample } from './prometheus.ts';
import type { BenchContext } from './result.ts';
import { summarize, type Summary } from './stats.ts';
import { delay } from './timing.ts';

export const NS = 'bench-pipeline';
export const STREAM = 'BENCH_EVENTS';
export const SUBJECT_ROOT = 'bench.events';
export const TARGET_TIMEOUT_MS = 10_000;
/** The schema's maximum (src/api/http.ts): far above any rate one process reaches here. */
export const RATE_LIMIT_PER_SECOND = 100_000;
export const LATENCY_WARMUP = 500;
/**
 * Seconds of paced events published right before the measured ones, in the same schedule: the
 * measurement is of the steady state at that rate. Without it the first ≈ 150 ms after the idle
 * gap (the quiet-machine wait) show 6–13 ms stalls in the operator — code V8 let go cold while
 * idle being compiled again — which at 10,000 events are most of the p99 (bench/README).
 */
export const LATENCY_PACED_WARMUP_S = 1;
export const SINK_PATH = '/v1/events';

export type TransformKind = 'mapping' | 'jsonata';

export interface Settings {
  readonly events: number;
  readonly warmup: number;
  readonly timeoutMs: number;
  /** How long a run waits for the machine to be quiet before it starts anyway. */
  readonly quietWaitMs: number;
}

/** Machine CPU use below which a run starts: the bench's own idle servers and operator use ~0.1–0.2 cores. */
export const QUIET_CORES = 0.4;

/** What one measured run produced; every rate is from sink (or loop) receive times. */
export interface RunResult {
  readonly label: string;
  readonly concurrency: number;
  readonly received: number;
  readonly duplicates: number;
  /** (received − 1) ÷ (last − first receive), per second. */
  readonly perSecond: number | undefined;
  readonly spanMs: number | undefined;
  /** CPU seconds per process over the polled window, and per measured event (µs). */
  readonly cpu: Record<string, CpuWindow | undefined>;
  readonly complete: boolean;
  readonly extra: Record<string, unknown>;
}

export interface Env {
  /** Runs that started although the machine was busy (label → cores in use). */
  readonly busyStarts: Map<string, number | undefined>;
  /** Runs whose every attempt had other work above DISTURBED_CORES (label → cores). */
  readonly disturbed: Map<string, number>;
  readonly ctx: BenchContext;
  readonly cp: ControlPlane;
  readonly raw: RawKube;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly sink: Sink;
  readonly settings: Settings;
}

/**
 * Starts what every pipeline run needs: a control plane (one nats-server, or a JetStream cluster
 * of `natsCluster` nodes with the source stream replicated on every one, up to 3), the CRDs, the
 * namespace, the source stream and the sink. `close` stops all of it, also after a failure.
 */
export async function setupPipelineEnv(
  ctx: BenchContext,
  settings: Settings,
  options: { readonly natsCluster?: number } = {},
): Promise<{ readonly env: Env; close(): Promise<void> }> {
  const cp = await startControlPlane(options.natsCluster === undefined ? {} : { natsCluster: options.natsCluster });
  let raw: RawKube | undefined;
  let nc: NatsConnection | undefined;
  let sink: Sink | undefined;
  const close = async (): Promise<void> => {
    await sink?.close().catch(() => undefined);
    await raw?.close().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await cp.stop();
  };
  try {
    await installCrds(cp.kubeConfig);
    raw = await RawKube.create(cp.kubeConfig, { connections: 4 });
    await raw.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    nc = await connect({ servers: cp.natsUrl.split(',') });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAM, subjects: [`${SUBJECT_ROOT}.>`], num_replicas: Math.min(3, options.natsCluster ?? 1) });
    sink = await startSink();
    ctx.details.servers = { nats: nc.info?.version, cluster: nc.info?.cluster, urls: cp.natsUrl, sink: sink.url };
    return { env: { busyStarts: new Map(), disturbed: new Map(), ctx, cp, raw, nc, js: jetstream(nc), jsm, sink, settings }, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export const collection = `/apis/ferry.dev/v1alpha1/namespaces/${NS}/integrations`;

/** `replicas`: operator replicas that run the pipeline (`spec.runtime.replicas`); the operator's default when undefined. */
export function integrationSpec(subject: string, sinkUrl: string, transform: TransformKind, concurrency: number, replicas?: number): Record<string, unknown> {
  return {
    ...(replicas === undefined ? {} : { runtime: { replicas } }),
    // The backlog is published before the Integration exists: it must start at the beginning.
    source: { stream: STREAM, subjects: [subject], startAt: 'Beginning' },
    schema: { inline: EVENT_SCHEMA },
    transform: transform === 'mapping' ? { mapping: MAPPING } : { jsonata: JSONATA },
    target: { url: `${sinkUrl}${SINK_PATH}`, timeout: `${TARGET_TIMEOUT_MS}ms` },
    delivery: {
      concurrency,
      maxAttempts: 5,
      rateLimit: { perSecond: RATE_LIMIT_PER_SECOND },
      circuitBreaker: { failures: 5, window: '30s', openFor: '60s' },
    },
  };
}

/** Publishes one event per key (key = id = Nats-Msg-Id), PubAcks awaited in batches. */
export async function publishBacklog(js: JetStreamClient, subject: string, keys: readonly string[], offset = 0): Promise<void> {
  const batch = 1000;
  for (let i = 0; i < keys.length; i += batch) {
    await Promise.all(
      keys.slice(i, i + batch).map((key, j) => js.publish(subject, JSON.stringify(benchEvent(key, offset + i + j)), { msgID: key })),
    );
  }
}

/**
 * Publishes one event per key at `perSecond`, open loop (the schedule does not wait for the
 * consumer), and returns each key's publish time (monotonic ms, taken just before the publish).
 */
export async function publishPaced(js: JetStreamClient, subject: string, keys: readonly string[], perSecond: number): Promise<Map<string, number>> {
  const published = new Map<string, number>();
  const acks: Promise<unknown>[] = [];
  const start = monoMs();
  let i = 0;
  while (i < keys.length) {
    const due = Math.min(keys.length, Math.floor(((monoMs() - start) * perSecond) / 1000) + 1);
    for (; i < due; i++) {
      const key = keys[i] ?? '';
      published.set(key, monoMs());
      acks.push(js.publish(subject, JSON.stringify(benchEvent(key, i)), { msgID: key }));
    }
    await delay(1);
  }
  await Promise.all(acks);
  return published;
}

/**
 * Publishes `LATENCY_PACED_WARMUP_S` of warm-up events (prefix `<label>-p`) and then `count`
 * measured ones (prefix `label`) in one paced schedule; returns the measured keys' publish times.
 */
async function publishPacedWithWarmUp(e: Env, subject: string, label: string, count: number, perSecond: number): Promise<Map<string, number>> {
  const measured = keysOf(label, count);
  const all = await publishPaced(e.js, subject, [...keysOf(pacedWarmPrefix(label), pacedWarmUpCount(perSecond)), ...measured], perSecond);
  return new Map(measured.map((k) => [k, all.get(k) ?? Number.NaN]));
}

export function pacedWarmUpCount(perSecond: number): number {
  return Math.round(perSecond * LATENCY_PACED_WARMUP_S);
}

function pacedWarmPrefix(label: string): string {
  return `${label}-p`;
}

export function keysOf(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => eventKey(prefix, i));
}

export interface Window {
  readonly complete: boolean;
  readonly received: number;
  readonly cpu: RunResult['cpu'];
}

/** Processes under test whose main thread is also measured apart (the rest: GC helpers, libuv pool). */
export const MAIN_THREADS = ['operator', 'operator2', 'floor'];

/** The processes whose CPU every run accounts for, besides the one under test. */
export function commonPids(e: Env): Record<string, number | undefined> {
  // On a cluster every node is one of ours: left out, their CPU would count as other work.
  const nats = e.cp.natsCluster ? Object.fromEntries(e.cp.natsCluster.nodes.map((n) => [`nats${n.index}`, n.process.pid])) : { nats: e.cp.processes.nats?.pid };
  return { ...nats, sink: e.sink.pid, apiServer: e.cp.processes.apiServer?.pid, etcd: e.cp.processes.etcd?.pid, bench: process.pid };
}

/**
 * Polls the sink (every 50 ms) until `prefix` has `target` requests, and measures each process's
 * CPU (and the machine's) between the first poll that saw one and the last poll: the steady part
 * of the run.
 */
export async function awaitSink(e: Env, prefix: string, target: number, pids: Readonly<Record<string, number | undefined>>, alive: () => string | undefined): Promise<Window> {
  const deadline = monoMs() + e.settings.timeoutMs;
  let first: { snapshot: CpuSnapshot; count: number } | undefined;
  let lastLog = monoMs();
  for (;;) {
    const { count, duplicates } = await e.sink.count(prefix);
    const t = monoMs();
    if (first === undefined && count > 0) first = { snapshot: cpuSnapshot(t, pids, MAIN_THREADS), count };
    const dead = alive();
    if (count >= target || t > deadline || dead !== undefined) {
      const cpu = first && count > first.count ? cpuBetween(first.snapshot, cpuSnapshot(t, pids, MAIN_THREADS), count - first.count) : {};
      if (count < target) e.ctx.log(`${prefix}: ${count}/${target} received (${dead ?? 'timeout'})`);
      if (duplicates > 0) e.ctx.log(`${prefix}: ${duplicates} duplicate deliveries`);
      return { complete: count >= target, received: count, cpu };
    }
    if (t - lastLog > 10_000) {
      lastLog = t;
      e.ctx.log(`${prefix}: ${count}/${target} received`);
    }
    await delay(50);
  }
}

/** Waits for a quiet machine before a measured run (see waitForQuietMachine); notes when it never came. */
export async function quiet(e: Env, label: string): Promise<void> {
  const q = await waitForQuietMachine(e.settings.quietWaitMs, QUIET_CORES);
  if (q.waitedMs > 1500) e.ctx.log(`${label}: waited ${(q.waitedMs / 1000).toFixed(0)} s for a quiet machine (${q.busyCores?.toFixed(2) ?? '?'} cores busy)`);
  if (!q.quiet) e.busyStarts.set(label, q.busyCores);
}

/** Other work above this many cores during a run makes it disturbed: it is run again. */
export const DISTURBED_CORES = 0.25;
export const MAX_ATTEMPTS = 3;

/**
 * Runs `run` until no other work on the machine used more than DISTURBED_CORES during its
 * measured window (at most MAX_ATTEMPTS times; the last attempt stands, and is listed in the
 * notes). Each attempt gets its own label (`-t2`, `-t3`), so nothing is shared between them.
 */
export async function clean<T extends { readonly cpu: RunResult['cpu'] }>(e: Env, label: string, run: (label: string) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const l = attempt === 1 ? label : `${label}-t${attempt}`;
    const result = await run(l);
    const other = result.cpu.other?.cores;
    if (other === undefined || other <= DISTURBED_CORES) return result;
    if (attempt >= MAX_ATTEMPTS) {
      e.disturbed.set(l, other);
      return result;
    }
    e.ctx.log(`${l}: other work used ${other.toFixed(2)} cores during the run; running it again`);
  }
}

export function rateOf(received: number, first: number, last: number): { perSecond: number | undefined; spanMs: number | undefined } {
  const spanMs = last - first;
  return received > 1 && spanMs > 0 ? { perSecond: ((received - 1) * 1000) / spanMs, spanMs } : { perSecond: undefined, spanMs: undefined };
}

export async function waitForIntegrationGone(raw: RawKube, name: string, timeoutMs: number): Promise<void> {
  const deadline = monoMs() + timeoutMs;
  while (monoMs() < deadline) {
    try {
      await raw.request('GET', `${collection}/${name}`);
    } catch (err) {
      if (err instanceof KubeRequestError && err.status === 404) return;
      throw err;
    }
    await delay(100);
  }
  throw new Error(`integration ${name} still exists after ${timeoutMs} ms`);
}

export async function waitReady(raw: RawKube, name: string, timeoutMs: number): Promise<void> {
  const deadline = monoMs() + timeoutMs;
  while (monoMs() < deadline) {
    const obj = await raw.request<FerryObj>('GET', `${collection}/${name}`);
    if (isTrueNow(obj, 'Ready')) return;
    await delay(100);
  }
  throw new Error(`integration ${name} not Ready within ${timeoutMs} ms`);
}

/** Waits until the consumer has nothing pending and nothing unacknowledged. */
export async function waitDrained(jsm: JetStreamManager, consumer: string, timeoutMs: number): Promise<{ drained: boolean; redelivered: number; ackPending: number; pending: number }> {
  const deadline = monoMs() + timeoutMs;
  for (;;) {
    const info = await jsm.consumers.info(STREAM, consumer);
    const s = { redelivered: info.num_redelivered, ackPending: info.num_ack_pending, pending: info.num_pending };
    if ((s.ackPending === 0 && s.pending === 0) || monoMs() > deadline) return { drained: s.ackPending === 0 && s.pending === 0, ...s };
    await delay(100);
  }
}

/** The operator's per-Integration event counters, from /metrics. */
export async function eventCounts(op: OperatorProcess, name: string): Promise<Record<string, number | undefined>> {
  const samples = parsePrometheusText(await op.metrics());
  const base = { namespace: NS, integration: name };
  const out: Record<string, number | undefined> = {};
  for (const outcome of ['delivered', 'retry', 'invalid', 'transform', 'exhausted', 'rejected', 'contract']) {
    out[outcome] = sumSamples(samples, 'ferry_events_total', { ...base, outcome });
  }
  out.throttled = sumSamples(samples, 'ferry_throttled_total', base);
  // prom-client's process metrics (prefix ferry_process_), read right after the run.
  out.heapUsedBytes = sumSamples(samples, 'ferry_process_nodejs_heap_size_used_bytes');
  out.heapTotalBytes = sumSamples(samples, 'ferry_process_nodejs_heap_size_total_bytes');
  out.externalBytes = sumSamples(samples, 'ferry_process_nodejs_external_memory_bytes');
  out.rssBytes = readProcMemory(op.process.pid ?? -1)?.rssBytes;
  return out;
}

export interface Operator {
  readonly op: OperatorProcess;
  readonly pid: number;
  /** Why the operator is no longer usable, or undefined while it runs. */
  readonly dead: () => string | undefined;
}

/** The leader's integration controller has started: what a lone operator waits for. */
export const controllerStarted = (l: LogLine): boolean => l.msg === 'controller started' && l.controller === 'integration';

/** This process counts `n` live operator replicas (membership). */
export const liveReplicas =
  (n: number) =>
  (l: LogLine): boolean =>
    l.msg === 'live replicas changed' && Array.isArray(l.members) && l.members.length === n;

export async function launchOperator(e: { cp: ControlPlane; ctx: BenchContext }, identity: string, extraFlags?: readonly string[], ready: (l: LogLine) => boolean = controllerStarted): Promise<Operator> {
  // FERRY_BENCH_OPERATOR_NODE_FLAGS: flags for every operator process of the run (a heap setting's
  // A/B), on the command line: NODE_OPTIONS refuses most V8 flags.
  const nodeFlags = [...(process.env.FERRY_BENCH_OPERATOR_NODE_FLAGS ?? '').split(/\s+/).filter((a) => a !== ''), ...(extraFlags ?? [])];
  const op = await startOperator({ env: e.cp, identity, args: ['--allow-cidrs=127.0.0.1/32'], nodeFlags, envVars: { FERRY_LOG_LEVEL: 'info' } });
  const pid = op.process.pid;
  // The operator runs under `setpriv --pdeathsig`, which execs node: the pid must be node's own.
  const exe = pid === undefined ? undefined : readProcExe(pid);
  if (pid === undefined || exe !== realpathSync(process.execPath)) throw new Error(`operator pid ${String(pid)} is not a node process (${String(exe)})`);
  await op.waitForLog(ready, 60_000);
  return { op, pid, dead: () => (op.process.running ? undefined : `the operator exited; log tail: ${op.process.tail().slice(-1500)}`) };
}

/** More operator processes running the same Integration (`operator2`, … in the CPU figures), on `replicas` replicas. */
export interface Replicas {
  readonly replicas: number;
  readonly others: readonly Operator[];
}

/**
 * One Ferry run: W + N events published first, then the Integration created; waits until the sink
 * has all N measured events and the consumer is drained; deletes the Integration.
 */
export async function ferryRun(
  e: Env,
  o: Operator,
  label: string,
  transform: TransformKind,
  concurrency: number,
  events = e.settings.events,
  warmup = e.settings.warmup,
  replicas?: Replicas,
): Promise<RunResult & { readonly window: { from: number; to: number } | undefined }> {
  const others = replicas?.others ?? [];
  const pids = Object.fromEntries([o, ...others].map((p, i) => [i === 0 ? 'operator' : `operator${i + 1}`, p.pid]));
  const dead = (): string | undefined => [o, ...others].map((p) => p.dead()).find((d) => d !== undefined);
  const subject = `${SUBJECT_ROOT}.${label}`;
  const warmPrefix = `${label}-w`;
  await publishBacklog(e.js, subject, keysOf(warmPrefix, warmup));
  await publishBacklog(e.js, subject, keysOf(label, events), warmup);
  await quiet(e, label);
  e.ctx.log(`${label}: ${warmup} + ${events} events published; creating the Integration (${transform}, concurrency ${concurrency})`);
  await e.raw.request('POST', collection, { apiVersion: 'ferry.dev/v1alpha1', kind: 'Integration', metadata: { name: label }, spec: integrationSpec(subject, e.sink.url, transform, concurrency, replicas?.replicas) });
  const window = await awaitSink(e, label, events, { ...pids, ...commonPids(e) }, dead);
  const got = await e.sink.collect(label);
  await e.sink.collect(warmPrefix);
  const consumer = integrationConsumerName({ namespace: NS, name: label });
  const drained = window.complete ? await waitDrained(e.jsm, consumer, 30_000) : undefined;
  const counts = await eventCounts(o.op, label).catch(() => ({}));
  await e.raw.request('DELETE', `${collection}/${label}`);
  await waitForIntegrationGone(e.raw, label, 60_000);
  await e.jsm.streams.purge(STREAM, { filter: subject });
  const rate = rateOf(got.count, got.first, got.last);
  const more = others.map((_, i) => `, operator${i + 2} ${fmtCores(window.cpu[`operator${i + 2}`]?.cores)}, ${fmtCpu(window.cpu, `operator${i + 2}`)}`).join('');
  e.ctx.log(`${label}: ${got.count} received, ${fmtRate(rate.perSecond)}, operator ${fmtCores(window.cpu.operator?.cores)}, ${fmtCpu(window.cpu, 'operator')} CPU and ${fmtSys(window.cpu.operator)} per event${more}; others ${fmtCores(window.cpu.other?.cores)}`);
  return {
    label,
    concurrency,
    received: got.count,
    duplicates: got.duplicates,
    ...rate,
    cpu: window.cpu,
    complete: window.complete && got.count === events && drained?.drained === true,
    extra: { transform, drained, operatorCounts: counts },
    window: Number.isFinite(got.first) ? { from: got.first, to: got.last } : undefined,
  };
}

/**
 * (a) Ferry with mapping and (c) the I/O floor at concurrency `c`, each re-run when disturbed.
 * Which goes first alternates with the round, so a drift in the machine's load favours neither.
 */
export async function ferryAndFloor(e: Env, o: Operator, c: number, round: number): Promise<{ readonly ferry: RunResult; readonly floor: RunResult }> {
  const ferry = (): Promise<RunResult> => clean(e, `a-mapping-c${c}-r${round}`, (l) => ferryRun(e, o, l, 'mapping', c));
  const floor = (): Promise<RunResult> => clean(e, `c-io-c${c}-r${round}`, (l) => floorRun(e, 'io', l, c));
  if (round % 2 === 1) {
    const first = await ferry();
    return { ferry: first, floor: await floor() };
  }
  const first = await floor();
  return { ferry: await ferry(), floor: first };
}

/** The median run (nearest rank, the lower of two) at concurrency c. */
export function medianAt<T extends { readonly concurrency: number; readonly perSecond: number | undefined }>(runs: readonly T[], c: number): T | undefined {
  const sorted = runs.filter((r) => r.concurrency === c).sort((x, y) => (x.perSecond ?? -1) - (y.perSecond ?? -1));
  return sorted[Math.ceil(sorted.length / 2) - 1];
}

/** A floor (pipeline-floor-process.ts) or `go`: the Go worker peer (pipeline-goworker.ts). */
export type PeerMode = FloorConfig['mode'] | 'go';

/** How a peer process is started: extra Node flags for a floor; the binary (and a profile path) for the Go worker. */
export interface PeerLaunch {
  readonly execArgv?: readonly string[];
  readonly goWorker?: string;
  readonly goCpuProfile?: string;
  readonly goMaxProcs?: number;
}

/** The CPU entry (and the pid's name) of a peer's process: `goworker` for the Go worker, `floor` for the Node floors. */
export function peerProcess(mode: PeerMode): 'goworker' | 'floor' {
  return mode === 'go' ? 'goworker' : 'floor';
}

/**
 * One floor run (io, post or consume), or one Go worker run, with the same backlog and consumer
 * as a Ferry run. A Go worker run that loses or duplicates an event is incomplete, and says so.
 */
export async function floorRun(e: Env, mode: PeerMode, label: string, concurrency: number, launch: PeerLaunch = {}): Promise<RunResult & { readonly window: { from: number; to: number } | undefined }> {
  const { events, warmup } = e.settings;
  const subject = `${SUBJECT_ROOT}.${label}`;
  const warmPrefix = `${label}-w`;
  const consumer = `floor_${label.replaceAll('-', '_')}`;
  if (mode !== 'post') {
    await publishBacklog(e.js, subject, keysOf(warmPrefix, warmup));
    await publishBacklog(e.js, subject, keysOf(label, events), warmup);
    await e.jsm.consumers.add(STREAM, ferryLikeConsumer(consumer, subject, concurrency, TARGET_TIMEOUT_MS));
  }
  await quiet(e, label);
  const who = peerProcess(mode);
  e.ctx.log(`${label}: ${mode === 'go' ? 'Go worker' : `${mode} floor`}, concurrency ${concurrency}`);
  const floor = startPeer(e, mode, consumer, concurrency, launch, { warmup, count: events, warmupPrefix: warmPrefix, prefix: label });
  let exited: string | undefined;
  floor.done.catch((err: unknown) => {
    exited = err instanceof Error ? err.message : String(err);
  });
  let result: FloorResult;
  let window: Window | undefined;
  if (mode === 'consume') {
    result = await floor.done;
  } else {
    window = await awaitSink(e, label, events, { [who]: floor.pid, ...commonPids(e) }, () => exited);
    result = await floor.done;
  }
  await floor.release();
  let received = result.processed - warmup;
  let duplicates = 0;
  let rate = rateOf(received, result.firstMs, result.lastMs);
  let span: { from: number; to: number } | undefined = { from: result.firstMs, to: result.lastMs };
  if (mode !== 'consume') {
    const got = await e.sink.collect(label);
    await e.sink.collect(warmPrefix);
    received = got.count;
    duplicates = got.duplicates;
    rate = rateOf(got.count, got.first, got.last);
    span = Number.isFinite(got.first) ? { from: got.first, to: got.last } : undefined;
  }
  let drained;
  if (mode !== 'post') {
    drained = await waitDrained(e.jsm, consumer, 30_000);
    await e.jsm.consumers.delete(STREAM, consumer);
    await e.jsm.streams.purge(STREAM, { filter: subject });
  }
  e.ctx.log(
    `${label}: ${received} done, ${fmtRate(rate.perSecond)}${window?.cpu[who] ? `, ${who} ${fmtCores(window.cpu[who].cores)}, ${fmtCpu(window.cpu, who)} CPU and ${fmtSys(window.cpu[who])} per event; others ${fmtCores(window.cpu.other?.cores)}` : ''}`,
  );
  const exact = mode !== 'go' || (received === events && duplicates === 0);
  if (!exact) e.ctx.log(`${label}: THE GO WORKER IS WRONG: ${received} of ${events} events at the sink, ${duplicates} duplicates`);
  return {
    label,
    concurrency,
    received,
    duplicates,
    ...rate,
    cpu: window?.cpu ?? {},
    complete: exact && received === events && result.errors === 0 && (drained === undefined || drained.drained),
    extra: { mode, errors: result.errors, drained, loopSpanMs: result.lastMs - result.firstMs },
    window: span,
  };
}

/** How many messages a peer processes, and the key prefixes of its warm-up and measured events. */
interface PeerWork {
  readonly warmup: number;
  readonly count: number;
  readonly warmupPrefix?: string;
  readonly prefix: string;
}

function startPeer(e: Env, mode: PeerMode, consumer: string, concurrency: number, launch: PeerLaunch, work: PeerWork): FloorRun {
  const { warmup, count, prefix } = work;
  if (mode === 'go') {
    if (launch.goWorker === undefined) throw new Error('a Go worker run needs the goworker binary');
    return startGoWorker({
      binary: launch.goWorker,
      natsUrl: e.cp.natsUrl,
      stream: STREAM,
      consumer,
      url: `${e.sink.url}${SINK_PATH}`,
      schema: EVENT_SCHEMA,
      concurrency,
      connections: FERRY_CONNECTIONS_PER_ORIGIN,
      warmup,
      count,
      timeoutMs: TARGET_TIMEOUT_MS,
      // The same shape (and length) as Ferry's keys: `<namespace>/<name>/<Nats-Msg-Id>`.
      keyScope: `${NS}/${prefix}/`,
      ...(launch.goCpuProfile === undefined ? {} : { cpuProfile: launch.goCpuProfile }),
      ...(launch.goMaxProcs === undefined ? {} : { maxProcs: launch.goMaxProcs }),
    });
  }
  const config: FloorConfig = {
    mode,
    concurrency,
    warmup,
    count,
    natsUrl: e.cp.natsUrl,
    stream: STREAM,
    consumer,
    origin: e.sink.url,
    path: SINK_PATH,
    connections: FERRY_CONNECTIONS_PER_ORIGIN,
    ...(work.warmupPrefix === undefined ? {} : { warmupPrefix: work.warmupPrefix }),
    prefix,
  };
  return startFloor(config, launch.execArgv);
}

export interface LatencyResult {
  readonly label: string;
  readonly perSecond: number;
  readonly latency: Summary | undefined;
  readonly received: number;
  readonly complete: boolean;
  /** Where the tail comes from: events at or above p99, grouped by publish time. */
  readonly tail: readonly TailCluster[];
  readonly cpu: RunResult['cpu'];
  /** The operator's garbage collections over the paced phase (its own metrics), by kind. */
  readonly gc?: readonly GcKindDelta[];
}

export interface GcKindDelta {
  readonly kind: string;
  readonly count: number;
  readonly totalMs: number;
  /** How many took longer than 10 ms (the histogram's bucket bound). */
  readonly over10ms: number;
}

const GC_METRIC = 'ferry_process_nodejs_gc_duration_seconds';

/** GCs between two scrapes of the operator's /metrics, by kind (major, minor, incremental, weakcb). */
function gcDelta(before: readonly MetricSample[], after: readonly MetricSample[]): GcKindDelta[] {
  const kinds = new Set(selectSamples(after, `${GC_METRIC}_count`).map((m) => m.labels.kind ?? ''));
  const delta = (name: string, match: Record<string, string>): number => (sumSamples(after, name, match) ?? 0) - (sumSamples(before, name, match) ?? 0);
  return [...kinds].map((kind) => {
    const count = delta(`${GC_METRIC}_count`, { kind });
    return { kind, count, totalMs: delta(`${GC_METRIC}_sum`, { kind }) * 1000, over10ms: count - delta(`${GC_METRIC}_bucket`, { kind, le: '0.01' }) };
  });
}

export function fmtGc(gc: readonly GcKindDelta[] | undefined): string {
  if (!gc) return '—';
  return gc
    .filter((g) => g.count > 0)
    .map((g) => `${g.kind} ${g.count} (${g.totalMs.toFixed(0)} ms, ${g.over10ms} over 10 ms)`)
    .join(', ');
}

export interface TailCluster {
  /** Publish time of the cluster's first event, ms after the first publish. */
  readonly atMs: number;
  /** Publish time span of the cluster. */
  readonly spanMs: number;
  readonly events: number;
  readonly maxLatencyMs: number;
}

export function latencies(published: ReadonlyMap<string, number>, received: ReadonlyMap<string, number>): { sent: number; latency: number }[] {
  const out: { sent: number; latency: number }[] = [];
  for (const [key, at] of received) {
    const sent = published.get(key);
    if (sent !== undefined) out.push({ sent, latency: at - sent });
  }
  return out;
}

/**
 * Groups the events at or above `threshold` latency by publish time (a gap over 20 ms starts a
 * new group): one group of many events is one stall of the consumer (a blocked event loop, a GC
 * pause), many scattered events are queueing.
 */
export function tailClusters(samples: readonly { sent: number; latency: number }[], threshold: number): TailCluster[] {
  const start = Math.min(...samples.map((s) => s.sent));
  const slow = samples.filter((s) => s.latency >= threshold).sort((x, y) => x.sent - y.sent);
  const clusters: { first: number; last: number; events: number; max: number }[] = [];
  for (const s of slow) {
    const c = clusters[clusters.length - 1];
    if (c && s.sent - c.last <= 20) {
      c.last = s.sent;
      c.events++;
      c.max = Math.max(c.max, s.latency);
    } else clusters.push({ first: s.sent, last: s.sent, events: 1, max: s.latency });
  }
  return clusters.map((c) => ({ atMs: Math.round(c.first - start), spanMs: Math.round(c.last - c.first), events: c.events, maxLatencyMs: Math.round(c.max * 10) / 10 }));
}

export function latencyResult(label: string, perSecond: number, published: ReadonlyMap<string, number>, received: ReadonlyMap<string, number>, window: Window): LatencyResult {
  const samples = latencies(published, received);
  const latency = summarize(samples.map((s) => s.latency));
  return { label, perSecond, latency, received: received.size, complete: window.complete, tail: latency ? tailClusters(samples, latency.p99) : [], cpu: window.cpu };
}

export function fmtTail(r: LatencyResult): string {
  return r.tail
    .slice(0, 8)
    .map((c) => `${c.events} events published in ${c.spanMs} ms at +${c.atMs} ms (max ${c.maxLatencyMs} ms)`)
    .join('; ');
}

/**
 * With FERRY_BENCH_CPU_TIMELINE=1, a CPU timeline of the paced phase (cpu-timeline.ts); the
 * slices around the largest tail episode are logged, to tell CPU contention (run-queue wait,
 * steal) from a thread that had nothing to do.
 */
function timelineFor(e: Env, consumerPid: number | undefined): CpuTimeline | undefined {
  if (process.env.FERRY_BENCH_CPU_TIMELINE !== '1') return undefined;
  return startCpuTimeline({ ...commonPids(e), consumer: consumerPid }, { consumerMain: consumerPid, sinkMain: e.sink.pid }, { consumerV8: { pid: consumerPid, comm: 'V8Worker' } }, monoMs);
}

function logEpisodeTimeline(e: Env, label: string, timeline: CpuTimeline | undefined, published: ReadonlyMap<string, number>, result: LatencyResult): void {
  if (!timeline) return;
  const samples = timeline.stop();
  const worst = [...result.tail].sort((a, b) => b.events - a.events)[0];
  if (!worst || published.size === 0) return;
  const origin = Math.min(...published.values());
  const from = origin + worst.atMs - 40;
  const to = origin + worst.atMs + worst.spanMs + worst.maxLatencyMs + 40;
  e.ctx.log(`${label}: CPU around the largest tail episode (${worst.events} events at +${worst.atMs} ms), per slice on-CPU/run-queue-wait ms:`);
  for (const line of describeTimeline(samples, from, to, origin)) e.ctx.log(`  ${line}`);
}

/** Ferry under a paced load: warm-up backlog, then `count` events published at `perSecond` while it consumes. */
export async function ferryLatencyRun(e: Env, o: Operator, label: string, concurrency: number, count: number, perSecond: number): Promise<LatencyResult> {
  const subject = `${SUBJECT_ROOT}.${label}`;
  const warmPrefix = `${label}-w`;
  await publishBacklog(e.js, subject, keysOf(warmPrefix, LATENCY_WARMUP));
  await e.raw.request('POST', collection, { apiVersion: 'ferry.dev/v1alpha1', kind: 'Integration', metadata: { name: label }, spec: integrationSpec(subject, e.sink.url, 'mapping', concurrency) });
  await waitReady(e.raw, label, 60_000);
  await awaitSink(e, warmPrefix, LATENCY_WARMUP, {}, o.dead);
  await quiet(e, label);
  e.ctx.log(`${label}: publishing ${count} events at ${perSecond.toFixed(0)}/s while Ferry consumes (concurrency ${concurrency})`);
  const gcBefore = parsePrometheusText(await o.op.metrics());
  const timeline = timelineFor(e, o.pid);
  const published = await publishPacedWithWarmUp(e, subject, label, count, perSecond);
  const window = await awaitSink(e, label, count, { operator: o.pid, ...commonPids(e) }, o.dead);
  const gc = gcDelta(gcBefore, parsePrometheusText(await o.op.metrics()));
  const got = await e.sink.collect(label);
  await e.sink.collect(warmPrefix);
  await e.sink.collect(pacedWarmPrefix(label));
  await e.raw.request('DELETE', `${collection}/${label}`);
  await waitForIntegrationGone(e.raw, label, 60_000);
  await e.jsm.streams.purge(STREAM, { filter: subject });
  const result = { ...latencyResult(label, perSecond, published, got.times, window), gc };
  e.ctx.log(`${label}: p50 ${fmtMs(result.latency?.p50)}, p99 ${fmtMs(result.latency?.p99)}; tail ≥ p99: ${fmtTail(result)}; operator GCs: ${fmtGc(gc)}`);
  logEpisodeTimeline(e, label, timeline, published, result);
  return result;
}

/** The I/O floor under the same paced load. */
export async function floorLatencyRun(e: Env, label: string, concurrency: number, count: number, perSecond: number): Promise<LatencyResult> {
  const subject = `${SUBJECT_ROOT}.${label}`;
  const warmPrefix = `${label}-w`;
  const consumer = `floor_${label.replaceAll('-', '_')}`;
  await publishBacklog(e.js, subject, keysOf(warmPrefix, LATENCY_WARMUP));
  await e.jsm.consumers.add(STREAM, ferryLikeConsumer(consumer, subject, concurrency, TARGET_TIMEOUT_MS));
  // The floor counts the paced warm-up as warm-up too: its measured window starts after it.
  const floor = startPeer(e, 'io', consumer, concurrency, {}, { warmup: LATENCY_WARMUP + pacedWarmUpCount(perSecond), count, prefix: label });
  let exited: string | undefined;
  floor.done.catch((err: unknown) => {
    exited = err instanceof Error ? err.message : String(err);
  });
  await floor.ready;
  await awaitSink(e, warmPrefix, LATENCY_WARMUP, {}, () => exited);
  await quiet(e, label);
  e.ctx.log(`${label}: publishing ${count} events at ${perSecond.toFixed(0)}/s while the I/O floor consumes (concurrency ${concurrency})`);
  const timeline = timelineFor(e, floor.pid);
  const published = await publishPacedWithWarmUp(e, subject, label, count, perSecond);
  const window = await awaitSink(e, label, count, { floor: floor.pid, ...commonPids(e) }, () => exited);
  await floor.done;
  await floor.release();
  const got = await e.sink.collect(label);
  await e.sink.collect(warmPrefix);
  await e.sink.collect(pacedWarmPrefix(label));
  await e.jsm.consumers.delete(STREAM, consumer);
  await e.jsm.streams.purge(STREAM, { filter: subject });
  const result = latencyResult(label, perSecond, published, got.times, window);
  e.ctx.log(`${label}: p50 ${fmtMs(result.latency?.p50)}, p99 ${fmtMs(result.latency?.p99)}; tail ≥ p99: ${fmtTail(result)}`);
  logEpisodeTimeline(e, label, timeline, published, result);
  return result;
}

export function fmtRate(v: number | undefined): string {
  return v === undefined ? '— /s' : `${v.toFixed(0)} events/s`;
}

export function fmtCores(v: number | undefined): string {
  return v === undefined ? '— cores' : `${v.toFixed(2)} cores`;
}

/** CPU per event of a process, with its kernel share and its main thread's share, e.g. `147 µs (30 µs kernel, 128 µs main thread)`. */
export function fmtCpu(cpu: RunResult['cpu'], name: string): string {
  const w = cpu[name];
  const main = cpu[`${name}${MAIN_THREAD}`];
  if (w === undefined) return '— µs';
  const mainPart = main === undefined ? '' : `, ${main.usPerEvent.toFixed(0)} µs main thread`;
  return `${w.usPerEvent.toFixed(0)} µs (${w.systemUsPerEvent?.toFixed(0) ?? '?'} µs kernel${mainPart})`;
}

export function fmtSys(w: { readonly readsPerEvent?: number; readonly writesPerEvent?: number } | undefined): string {
  return w?.writesPerEvent === undefined || w.readsPerEvent === undefined ? '— syscalls' : `${w.writesPerEvent.toFixed(2)} writes + ${w.readsPerEvent.toFixed(2)} reads`;
}

export function fmtMs(v: number | undefined): string {
  return v === undefined ? '—' : `${v.toFixed(1)} ms`;
}
