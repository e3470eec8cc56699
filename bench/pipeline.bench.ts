/**
 * pipeline: how fast one operator's Integration pipeline moves events from JetStream to an HTTP
 * target, against the raw limits of the same NATS server and the same target, measured in the
 * same run on the same machine and reported as ratios.
 *
 * One local control plane (etcd + kube-apiserver + nats-server), one stream, one HTTP sink in its
 * own process (lib/pipeline-sink.ts: answers 200 at once and records when each idempotency key
 * arrived), and one `ferry controller` process (log level info, `--allow-cidrs=127.0.0.1/32`).
 *
 * (a) Ferry, mapping — an Integration with every production mechanism on: JSON Schema validation
 *     (ajv, formats), a six-field mapping, a rate limit far above what it reaches, the circuit
 *     breaker, metrics, status counters (KV), info logging. Throughput runs use a backlog: W
 *     warm-up events and then N measured events are published (PubAck awaited) *before* the
 *     Integration is created; the pipeline then drains them. events/s = (N − 1) ÷ (time between
 *     the sink receiving the first and the last measured event). Run at each concurrency in
 *     FERRY_BENCH_CONCURRENCY; the best is the headline.
 * (b) Ferry, JSONata — the same with an equivalent JSONata expression.
 * (c) I/O floor — lib/pipeline-floor-process.ts `io`: the same consume (same consumer config,
 *     `max_messages`, in-flight bound) + undici POST (Pool, same connection count) + ack, nothing
 *     else; same backlog, same rate definition.
 * (d) raw POST — the same pool and concurrency POSTing pre-built bodies to the sink.
 * (e) raw consume + ack — the same consume, each message acked on arrival.
 * (g) Go worker — test/env/go/goworker (issue 11 goal 2's peer: what a user would write instead
 *     of an Integration, built from pinned Go modules by test/env/go-tools.ts): nats.go jetstream
 *     Consume on the same consumer config with the same `max_messages`, `concurrency` goroutines,
 *     JSON Schema validation (santhosh-tekuri/jsonschema, the same schema, formats asserted), the
 *     mapping by hand, net/http POST with an Idempotency-Key (a Transport capped at the same
 *     connection count), ack after 2xx. Same backlog, same rate definition; Ferry ÷ Go worker
 *     aims at ≥ 0.7. A Go run that loses or duplicates an event makes the bench incomplete.
 * (a2) Ferry on two replicas — a second operator process joins and (a) runs once more at the
 *     best concurrency with `spec.runtime.replicas: 2`, so that Ferry uses every core as the Go
 *     worker does (FERRY_BENCH_TWO_REPLICAS=0 skips it).
 * Latency — publish time (just before `js.publish`, in this process) → sink receive time, on the
 *     machine-wide monotonic clock, with events published *while* the pipeline consumes, at a
 *     fixed rate (1,000 events/s, issue 11 goal 3's load) so neither side is saturated; for
 *     Ferry (mapping) and for the I/O floor, at the best concurrency of (a). The goal is the p99
 *     Ferry adds over the floor: Ferry p99 − floor p99 ≤ 2 ms.
 * Memory — the operator's VmHWM after the (a) runs (which come first) is its peak RSS in (a).
 * Profile — (FERRY_BENCH_CPU_PROF, default 1) a second operator under `--cpu-prof` runs (a) and
 *     (b) again at the best concurrency, and the I/O floor runs under `--cpu-prof` too; each
 *     profile is cut to its measured window (lib/pipeline-profile.ts). The Go worker runs once
 *     with `-cpuprofile` (pprof of its measured messages, lib/pipeline-goprofile.ts). Profiled
 *     runs are not used for any figure but the hot spots.
 *
 * Environment: FERRY_BENCH_EVENTS (20000), FERRY_BENCH_WARMUP_EVENTS (2000),
 * FERRY_BENCH_CONCURRENCY (16,64,128), FERRY_BENCH_ROUNDS (3: every throughput run is repeated,
 * Ferry and the I/O floor alternating, and the median is reported),
 * FERRY_BENCH_LATENCY_EVENTS (10000),
 * FERRY_BENCH_LATENCY_RATE (events/s, 1000), FERRY_BENCH_TIMEOUT_S (300, per run), FERRY_BENCH_CPU_PROF (1; 0 to skip),
 * FERRY_BENCH_TWO_REPLICAS (1; 0 skips the run of one Integration on two operator processes),
 * FERRY_BENCH_OPERATOR_NODE_FLAGS (node/V8 flags on every operator process's command line, e.g. a heap setting's A/B),
 * FERRY_BENCH_GO_MAXPROCS (unset: the Go worker runs with Go's default GOMAXPROCS, every core;
 * 1 gives it one core like Ferry's event loop), FERRY_BENCH_QUIET_WAIT_S (120: before each measured run, wait up to this long for a second in
 * which the whole machine used < 0.4 cores, so a test suite or compiler running alongside does
 * not land in a measurement; runs that started busy are listed in the notes). A run during which
 * processes outside the benchmark used more than 0.25 cores is run again, up to 3 times.
 */

import { join } from 'node:path';
import { versions } from '../test/env/binaries.ts';
import { ensureGoTool } from '../test/env/go-tools.ts';
import type { LogLine } from '../test/support/operator-process.ts';
import { gitCommit, machineFacts } from './lib/machine.ts';
import { FERRY_CONNECTIONS_PER_ORIGIN, intEnv, intListEnv } from './lib/pipeline-common.ts';
import { MAIN_THREAD } from './lib/pipeline-cpu.ts';
import { summarizeGoProfile } from './lib/pipeline-goprofile.ts';
import { functionBursts, moduleDeltaPerEvent, summarizeProfileWindow, type WindowedProfile } from './lib/pipeline-profile.ts';
import {
  clean,
  ferryLatencyRun,
  ferryRun,
  floorLatencyRun,
  floorRun,
  fmtCores,
  fmtCpu,
  fmtSys,
  ferryAndFloor,
  fmtGc,
  fmtTail,
  launchOperator,
  liveReplicas,
  LATENCY_PACED_WARMUP_S,
  LATENCY_WARMUP,
  MAX_ATTEMPTS,
  medianAt,
  RATE_LIMIT_PER_SECOND,
  setupPipelineEnv,
  type Operator,
  type RunResult,
  type Settings,
} from './lib/pipeline-runs.ts';
import { ProcessSampler, readProcMemory } from './lib/proc.ts';
import { RATIOS_GROUP, resultsDir, runBenchmark, type BenchContext } from './lib/result.ts';
import { ratio, type Summary } from './lib/stats.ts';

const NAME = 'pipeline';

function best<T extends { readonly perSecond: number | undefined }>(runs: readonly T[]): T | undefined {
  return runs.reduce<T | undefined>((acc, r) => ((r.perSecond ?? -1) > (acc?.perSecond ?? -1) ? r : acc), undefined);
}

function warnings(lines: readonly LogLine[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) {
    if (l.level === 'warn' || l.level === 'error' || l.level === 'fatal') {
      const err = l.err as { message?: unknown; code?: unknown } | undefined;
      const detail = typeof err?.message === 'string' ? ` (${typeof err.code === 'string' ? `${err.code}: ` : ''}${err.message.slice(0, 120)})` : '';
      const key = `${l.level}: ${l.msg ?? ''}${detail}`;
      out[key] = (out[key] ?? 0) + 1;
    }
  }
  return out;
}

function profileNote(what: string, p: WindowedProfile): string {
  const mods = p.byModule.slice(0, 8).map((h) => `${h.name} ${h.percent}%`).join(', ');
  const fns = p.inclusiveFerry.slice(0, 8).map((h) => `${h.name} ${h.percent}%`).join(', ');
  return `${what}: busy ${p.busyMs} ms of ${p.windowMs} ms sampled (GC ${p.gcMs} ms); self time by module: ${mods}; inclusive, Ferry functions: ${fns}`;
}


async function bench(ctx: BenchContext): Promise<'complete' | 'incomplete'> {
  const settings: Settings = {
    events: intEnv('FERRY_BENCH_EVENTS', 20_000),
    warmup: intEnv('FERRY_BENCH_WARMUP_EVENTS', 2_000),
    timeoutMs: intEnv('FERRY_BENCH_TIMEOUT_S', 300) * 1000,
    quietWaitMs: intEnv('FERRY_BENCH_QUIET_WAIT_S', 120) * 1000,
  };
  const concurrencies = intListEnv('FERRY_BENCH_CONCURRENCY', [16, 64, 128]);
  const latencyEvents = intEnv('FERRY_BENCH_LATENCY_EVENTS', 10_000);
  const pacedRate = intEnv('FERRY_BENCH_LATENCY_RATE', 1_000);
  const cpuProfile = process.env.FERRY_BENCH_CPU_PROF !== '0';
  const rounds = intEnv('FERRY_BENCH_ROUNDS', 3);
  Object.assign(ctx.params, {
    events: settings.events,
    warmupEvents: settings.warmup,
    concurrency: concurrencies.join(','),
    rounds,
    connectionsPerOrigin: FERRY_CONNECTIONS_PER_ORIGIN,
    rateLimitPerSecond: RATE_LIMIT_PER_SECOND,
    latencyEvents,
    operatorLogLevel: 'info',
    published: 'throughput: before consuming (backlog); latency: while consuming (paced)',
    cpuProfile,
    commit: gitCommit(),
  });

  ctx.log('building (or finding in the cache) the Go worker');
  const goWorker = await ensureGoTool('goworker', (line) => {
    ctx.log(line);
  });
  // GOMAXPROCS of the Go worker alone (nats-server is Go too and keeps its default).
  const goMaxProcs = process.env.FERRY_BENCH_GO_MAXPROCS ? intEnv('FERRY_BENCH_GO_MAXPROCS', 1) : undefined;
  const goLaunch = { goWorker, ...(goMaxProcs === undefined ? {} : { goMaxProcs }) };
  Object.assign(ctx.params, { goWorker, goMaxProcs: goMaxProcs ?? `Go's default (${machineFacts().cores})` });

  ctx.log('starting etcd, kube-apiserver and nats-server');
  const setup = await setupPipelineEnv(ctx, settings);
  const e = setup.env;
  const cp = e.cp;
  let operator: Operator | undefined;
  try {
    ctx.log('starting the operator (log level info)');
    operator = await launchOperator({ cp, ctx }, 'bench');
    const o = operator;
    const startupHwm = readProcMemory(o.pid)?.hwmBytes;

    ctx.log('warm-up run (not measured)');
    await ferryRun(e, o, 'warm-up', 'mapping', concurrencies[0] ?? 64, Math.min(settings.events, 5_000), 500);

    // (a) and the floors, concurrency by concurrency, so that each comparison is close in time.
    const sampler = new ProcessSampler({ operator: o.pid }).start();
    const a: RunResult[] = [];
    const io: RunResult[] = [];
    const post: RunResult[] = [];
    const consume: RunResult[] = [];
    const go: RunResult[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const c of concurrencies) {
        const pair = await ferryAndFloor(e, o, c, round);
        a.push(pair.ferry);
        io.push(pair.floor);
        go.push(await clean(e, `g-go-c${c}-r${round}`, (l) => floorRun(e, 'go', l, c, goLaunch)));
        post.push(await clean(e, `d-post-c${c}-r${round}`, (l) => floorRun(e, 'post', l, c)));
        consume.push(await floorRun(e, 'consume', `e-consume-c${c}-r${round}`, c));
      }
    }
    const aUsage = sampler.stop().operator;
    const hwmAfterA = readProcMemory(o.pid)?.hwmBytes;

    // (b)
    const b: RunResult[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const c of concurrencies) b.push(await clean(e, `b-jsonata-c${c}-r${round}`, (l) => ferryRun(e, o, l, 'jsonata', c)));
    }

    const at = medianAt;
    const medians = <T extends { readonly concurrency: number; readonly perSecond: number | undefined }>(runs: readonly T[]): T[] =>
      concurrencies.flatMap((c) => at(runs, c) ?? []);
    const bestA = best(medians(a));
    const cBest = bestA?.concurrency ?? concurrencies[0] ?? 64;
    const ioAtBest = at(io, cBest);

    // Latency under a paced load, at the best concurrency of (a).
    ctx.params.latencyRatePerSecond = pacedRate;
    ctx.params.latencyConcurrency = cBest;
    const latA = await clean(e, `lat-ferry-c${cBest}`, (l) => ferryLatencyRun(e, o, l, cBest, latencyEvents, pacedRate));
    const latIo = await clean(e, `lat-io-c${cBest}`, (l) => floorLatencyRun(e, l, cBest, latencyEvents, pacedRate));
    const addedP99 = latA.latency !== undefined && latIo.latency !== undefined ? latA.latency.p99 - latIo.latency.p99 : undefined;
    const fmtMs = (l: Summary | undefined): string => (l === undefined ? '—' : `${l.p50.toFixed(2)}/${l.p99.toFixed(2)}/${l.p999.toFixed(2)} ms`);

    // Ferry on every core too: a second operator process, the same Integration on both replicas.
    let twoReplicas: RunResult | undefined;
    if (process.env.FERRY_BENCH_TWO_REPLICAS !== '0') {
      ctx.log('a second operator process: the Integration on two replicas');
      const o2 = await launchOperator({ cp, ctx }, 'bench-2', undefined, liveReplicas(2));
      try {
        await o.op.waitForLog(liveReplicas(2), 60_000);
        await ferryRun(e, o, 'a2-warm-up', 'mapping', cBest, Math.min(settings.events, 5_000), 500, { replicas: 2, others: [o2] });
        twoReplicas = await clean(e, `a2-mapping-c${cBest}`, (l) => ferryRun(e, o, l, 'mapping', cBest, settings.events, settings.warmup, { replicas: 2, others: [o2] }));
      } finally {
        await o2.op.stop();
      }
    }

    const warned = warnings(o.op.logs);
    ctx.details.operatorLogs = { lines: o.op.logs.length, warnings: warned };
    ctx.log('stopping the operator');
    await o.op.stop();
    operator = undefined;

    // Profiles: a second operator under --cpu-prof, and the I/O floor under --cpu-prof.
    const profiles: Record<string, WindowedProfile> = {};
    if (cpuProfile) {
      const dir = join(resultsDir, 'profiles');
      const opProfile = `${NAME}.operator.cpuprofile`;
      const floorProfile = `${NAME}.io-floor.cpuprofile`;
      ctx.log(`profiling: an operator under --cpu-prof (${join(dir, opProfile)})`);
      operator = await launchOperator({ cp, ctx }, 'bench-prof', ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${opProfile}`]);
      const po = operator;
      await ferryRun(e, po, 'p-warm-up', 'mapping', cBest, Math.min(settings.events, 5_000), 500);
      const pa = await ferryRun(e, po, `p-a-mapping-c${cBest}`, 'mapping', cBest);
      const pb = await ferryRun(e, po, `p-b-jsonata-c${cBest}`, 'jsonata', cBest);
      await po.op.stop();
      operator = undefined;
      if (pa.window) profiles.mapping = summarizeProfileWindow(join(dir, opProfile), pa.window.from, pa.window.to);
      // The runtime supervisor re-compiles every Integration on each resync: how long each blocks the loop.
      const compiles = functionBursts(join(dir, opProfile), 'compileIntegration');
      ctx.details.compileBursts = compiles;
      if (compiles.length > 0) {
        ctx.notes.push(
          `operator event loop blocked by compileIntegration (runtime supervisor; profiled operator, ~${Math.round(((compiles[compiles.length - 1]?.atMs ?? 0) - (compiles[0]?.atMs ?? 0)) / 1000)} s): ${compiles.length} times, ${compiles.map((b) => `${b.durationMs} ms`).join(', ')}`,
        );
      }
      if (pb.window) profiles.jsonata = summarizeProfileWindow(join(dir, opProfile), pb.window.from, pb.window.to);
      ctx.details.profiledRuns = { mapping: { perSecond: pa.perSecond, window: pa.window, events: pa.received }, jsonata: { perSecond: pb.perSecond, window: pb.window, events: pb.received } };
      const pio = await floorRun(e, 'io', `p-io-c${cBest}`, cBest, { execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${floorProfile}`] });
      // The Go worker's own pprof profile of its measured messages (`go tool pprof -top` reads it).
      const goProfile = join(dir, `${NAME}.goworker.pprof`);
      const pgo = await floorRun(e, 'go', `p-go-c${cBest}`, cBest, { ...goLaunch, goCpuProfile: goProfile });
      const goSummary = summarizeGoProfile(goWorker, goProfile, pgo.received);
      ctx.details.goProfile = { path: goProfile, events: pgo.received, perSecond: pgo.perSecond, summary: goSummary };
      if (goSummary) {
        const opBusy = profiles.mapping ? `; the operator's main thread ${((profiles.mapping.busyMs * 1000) / pa.received).toFixed(0)} µs (V8 profile, JS and GC on that thread only)` : '';
        ctx.notes.push(
          `profiled CPU per event: Go worker ${goSummary.usPerEvent.toFixed(0)} µs (pprof at 100 Hz, every thread)${opBusy}; Go worker self µs/event by package: ${goSummary.byPackage
            .slice(0, 10)
            .map((p) => `${p.name} ${p.usPerEvent}`)
            .join(', ')}`,
        );
      }
      if (pio.window) profiles.ioFloor = summarizeProfileWindow(join(dir, floorProfile), pio.window.from, pio.window.to);
      ctx.details.profiles = { operator: join(dir, opProfile), ioFloor: join(dir, floorProfile), ioFloorWindow: pio.window, ...profiles };
      if (profiles.mapping && profiles.ioFloor) {
        const delta = moduleDeltaPerEvent(profiles.mapping, pa.received, profiles.ioFloor, pio.received);
        ctx.details.profileDeltaPerEvent = delta;
        const busy = (p: WindowedProfile, n: number): string => `${((p.busyMs * 1000) / n).toFixed(0)} µs`;
        ctx.notes.push(
          `profiled CPU per event: operator ${busy(profiles.mapping, pa.received)}, I/O floor ${busy(profiles.ioFloor, pio.received)}; the operator's extra self µs/event by module: ${delta
            .slice(0, 10)
            .map((d) => `${d.module} +${d.deltaUs} (${d.aUs} vs ${d.bUs})`)
            .join(', ')}`,
        );
      }
    }

    // Figures.
    const bAtBest = at(b, cBest);
    const postAtBest = at(post, cBest);
    const consumeAtBest = at(consume, cBest);
    const bestIo = best(medians(io));
    const goAtBest = at(go, cBest);
    const bestGo = best(medians(go));
    const R = RATIOS_GROUP;
    ctx.figure(R, 'ratio.pipelineVsIoFloor', `(a) ÷ (c) I/O floor, events/s, c=${cBest}`, ratio(bestA?.perSecond, ioAtBest?.perSecond), 'ratio', 'aim ≥ 0.90');
    ctx.figure(R, 'ratio.pipelineVsIoFloorBest', '(a) best ÷ (c) best, events/s', ratio(bestA?.perSecond, bestIo?.perSecond), 'ratio', `(c) best at c=${String(bestIo?.concurrency)}`);
    ctx.figure(R, 'ratio.pipelineVsRawPost', `(a) ÷ (d) raw POST, events/s, c=${cBest}`, ratio(bestA?.perSecond, postAtBest?.perSecond), 'ratio');
    ctx.figure(R, 'ratio.pipelineVsRawConsume', `(a) ÷ (e) raw consume+ack, events/s, c=${cBest}`, ratio(bestA?.perSecond, consumeAtBest?.perSecond), 'ratio');
    ctx.figure(R, 'ratio.jsonataVsIoFloor', `(b) JSONata ÷ (c) I/O floor, events/s, c=${cBest}`, ratio(bAtBest?.perSecond, ioAtBest?.perSecond), 'ratio');
    ctx.figure(R, 'ratio.jsonataVsMapping', `(b) JSONata ÷ (a) mapping, events/s, c=${cBest}`, ratio(bAtBest?.perSecond, bestA?.perSecond), 'ratio');
    ctx.figure(R, 'ratio.ioFloorVsRawPost', `(c) I/O floor ÷ (d) raw POST, c=${cBest}`, ratio(ioAtBest?.perSecond, postAtBest?.perSecond), 'ratio', 'what consume+ack costs the HTTP loop');
    ctx.figure(R, 'ratio.cpuPerEvent', `CPU per event: operator ÷ I/O floor process, c=${cBest}`, ratio(bestA?.cpu.operator?.usPerEvent, ioAtBest?.cpu.floor?.usPerEvent), 'ratio');
    ctx.figure(R, 'ratio.pipelineVsGoWorker', `(a) ÷ (g) Go worker, events/s, c=${cBest}`, ratio(bestA?.perSecond, goAtBest?.perSecond), 'ratio', 'aim ≥ 0.70');
    ctx.figure(R, 'ratio.pipelineVsGoWorkerBest', '(a) best ÷ (g) best, events/s', ratio(bestA?.perSecond, bestGo?.perSecond), 'ratio', `(g) best at c=${String(bestGo?.concurrency)}`);
    ctx.figure(R, 'ratio.cpuPerEventVsGoWorker', `CPU per event: operator ÷ Go worker process, c=${cBest}`, ratio(bestA?.cpu.operator?.usPerEvent, goAtBest?.cpu.goworker?.usPerEvent), 'ratio');
    ctx.figure(R, 'ratio.ioFloorVsGoWorker', `(c) I/O floor ÷ (g) Go worker, events/s, c=${cBest}`, ratio(ioAtBest?.perSecond, goAtBest?.perSecond), 'ratio', 'the Node I/O floor against a Go program doing more');
    ctx.figure(R, 'ratio.latencyP50', `paced latency p50: Ferry ÷ I/O floor (${pacedRate}/s)`, ratio(latA.latency?.p50, latIo.latency?.p50), 'ratio');
    ctx.figure(R, 'ratio.latencyP99', `paced latency p99: Ferry ÷ I/O floor (${pacedRate}/s)`, ratio(latA.latency?.p99, latIo.latency?.p99), 'ratio');
    ctx.figure(R, 'latency.addedP99', `paced latency p99 Ferry adds over the I/O floor (${pacedRate}/s)`, addedP99, 'ms', 'aim ≤ 2 ms');
    ctx.figure(R, 'ratio.peakRss', 'operator peak RSS in (a) ÷ at start', ratio(hwmAfterA, startupHwm), 'ratio', 'VmHWM ÷ VmHWM before the first event');

    // Issue 11 goal 1, stated as the issue states it, so every run says whether it is met.
    const goalFloor = ratio(bestA?.perSecond, ioAtBest?.perSecond);
    const goalJsonata = ratio(bAtBest?.perSecond, bestA?.perSecond);
    const goalGo = ratio(bestA?.perSecond, goAtBest?.perSecond);
    const cpuVsGo = ratio(bestA?.cpu.operator?.usPerEvent, goAtBest?.cpu.goworker?.usPerEvent);
    const us = (v: number | undefined): string => (v === undefined ? '—' : `${v.toFixed(0)} µs`);
    const sumUs = (r: RunResult, names: readonly string[]): number | undefined => {
      const parts = names.map((n) => r.cpu[n]?.usPerEvent);
      return parts.reduce<number | undefined>((s, v) => (s === undefined || v === undefined ? undefined : s + v), 0);
    };
    const verdict = (value: number | undefined, aim: number): string => (value === undefined ? 'unknown' : value >= aim ? 'met' : 'not met');
    const goalLines = [
      `goal 1: Ferry ÷ I/O floor ≥ 0.9: ${verdict(goalFloor, 0.9)} (${goalFloor?.toFixed(2) ?? '—'} at c=${cBest})`,
      `goal 1: JSONata ÷ mapping ≥ 0.8: ${verdict(goalJsonata, 0.8)} (${goalJsonata?.toFixed(2) ?? '—'} at c=${cBest})`,
      `goal 2: Ferry ÷ Go worker ≥ 0.7: ${verdict(goalGo, 0.7)} (${goalGo?.toFixed(2) ?? '—'} at c=${cBest}: ${bestA?.perSecond?.toFixed(0) ?? '—'} vs ${goAtBest?.perSecond?.toFixed(0) ?? '—'} events/s; Go worker best ${bestGo?.perSecond?.toFixed(0) ?? '—'}/s at c=${String(bestGo?.concurrency)})`,
      `goal 2: CPU per event, Ferry ÷ Go worker: ${cpuVsGo?.toFixed(2) ?? '—'} (operator ${us(bestA?.cpu.operator?.usPerEvent)}, Go worker ${us(goAtBest?.cpu.goworker?.usPerEvent)}, I/O floor ${us(ioAtBest?.cpu.floor?.usPerEvent)} at c=${cBest})`,
      ...(twoReplicas === undefined
        ? []
        : [
            `goal 2, two operator replicas (Ferry on both cores like the Go worker): Ferry ÷ Go worker ${ratio(twoReplicas.perSecond, goAtBest?.perSecond)?.toFixed(2) ?? '—'} (${twoReplicas.perSecond?.toFixed(0) ?? '—'} vs ${goAtBest?.perSecond?.toFixed(0) ?? '—'} events/s at c=${cBest}; CPU per event ${us(sumUs(twoReplicas, ['operator', 'operator2']))} for both operators)`,
          ]),
      `goal 3: added p99 (Ferry − I/O floor) ≤ 2 ms at ${pacedRate}/s: ${addedP99 === undefined ? 'unknown' : addedP99 <= 2 ? 'met' : 'not met'} (${addedP99?.toFixed(2) ?? '—'} ms; Ferry p50/p99/p999 ${fmtMs(latA.latency)}, floor ${fmtMs(latIo.latency)})`,
    ];
    for (const line of goalLines) ctx.log(line);
    ctx.notes.unshift(...goalLines);

    const A = `(a) Ferry pipeline, mapping, best of c=${concurrencies.join(',')} (median of ${rounds} rounds)`;
    ctx.figure(A, 'a.perSecond', `events/s (c=${cBest})`, bestA?.perSecond, 'per_second', `${settings.events} events, backlog`);
    ctx.figure(A, 'a.operatorCores', 'operator CPU use while delivering', bestA?.cpu.operator?.cores, 'cores', 'of 1 thread + GC helpers');
    ctx.figure(A, 'a.operatorUsPerEvent', 'operator CPU µs per event', bestA?.cpu.operator?.usPerEvent, 'count', `I/O floor: ${ioAtBest?.cpu.floor?.usPerEvent.toFixed(0) ?? '—'} µs`);
    ctx.figure(A, 'a.operatorMainUsPerEvent', '  of which its main thread', bestA?.cpu[`operator${MAIN_THREAD}`]?.usPerEvent, 'count', `I/O floor: ${ioAtBest?.cpu[`floor${MAIN_THREAD}`]?.usPerEvent.toFixed(0) ?? '—'} µs; the rest is GC helper threads and the libuv pool`);
    ctx.figure(A, 'a.operatorKernelUsPerEvent', '  of which in the kernel', bestA?.cpu.operator?.systemUsPerEvent, 'count', `I/O floor: ${ioAtBest?.cpu.floor?.systemUsPerEvent?.toFixed(0) ?? '—'} µs`);
    ctx.figure(A, 'a.natsCores', 'nats-server CPU use while delivering', bestA?.cpu.nats?.cores, 'cores');
    ctx.figure(A, 'a.sinkCores', 'sink CPU use while delivering', bestA?.cpu.sink?.cores, 'cores');
    ctx.figure(A, 'a.machineCores', 'whole machine CPU use while delivering', bestA?.cpu.machine?.cores, 'cores', `of ${machineFacts().cores}`);
    ctx.figure(A, 'a.otherCores', '  of which processes outside this benchmark', bestA?.cpu.other?.cores, 'cores', 'other work on the machine competes for the same cores');
    ctx.figure(A, 'a.peakRssBytes', 'operator peak RSS during (a) (VmHWM)', hwmAfterA, 'bytes', 'includes start-up and the warm-up run');
    ctx.figure(A, 'a.peakSampledRssBytes', 'operator peak sampled VmRSS during (a)', aUsage?.peakSampledRssBytes, 'bytes', `${String(aUsage?.samples)} samples, 500 ms apart`);
    ctx.figure(A, 'a.startupRssBytes', 'operator VmHWM before the first event', startupHwm, 'bytes');
    ctx.figure(A, 'a.duplicates', 'duplicate deliveries at the sink, all (a) runs', a.reduce((s, r) => s + r.duplicates, 0), 'count');
    ctx.figure(A, 'g.duplicates', 'duplicate deliveries at the sink, all (g) Go worker runs', go.reduce((s, r) => s + r.duplicates, 0), 'count', 'any makes the run incomplete');

    const C = `events/s by concurrency, median of ${rounds} rounds (backlog of N; (e) has no HTTP)`;
    for (const c of concurrencies) {
      ctx.figure(C, `a.c${c}`, `(a) Ferry, mapping, c=${c}`, at(a, c)?.perSecond, 'per_second', `operator ${fmtCores(at(a, c)?.cpu.operator?.cores)}, ${fmtCpu(at(a, c)?.cpu ?? {}, 'operator')} and ${fmtSys(at(a, c)?.cpu.operator)}/event; others ${fmtCores(at(a, c)?.cpu.other?.cores)}`);
      ctx.figure(C, `b.c${c}`, `(b) Ferry, JSONata, c=${c}`, at(b, c)?.perSecond, 'per_second', `operator ${fmtCores(at(b, c)?.cpu.operator?.cores)}, ${fmtCpu(at(b, c)?.cpu ?? {}, 'operator')}/event`);
      ctx.figure(C, `c.c${c}`, `(c) I/O floor, c=${c}`, at(io, c)?.perSecond, 'per_second', `floor ${fmtCores(at(io, c)?.cpu.floor?.cores)}, ${fmtCpu(at(io, c)?.cpu ?? {}, 'floor')} and ${fmtSys(at(io, c)?.cpu.floor)}/event; others ${fmtCores(at(io, c)?.cpu.other?.cores)}`);
      ctx.figure(C, `g.c${c}`, `(g) Go worker, c=${c}`, at(go, c)?.perSecond, 'per_second', `goworker ${fmtCores(at(go, c)?.cpu.goworker?.cores)}, ${fmtCpu(at(go, c)?.cpu ?? {}, 'goworker')} and ${fmtSys(at(go, c)?.cpu.goworker)}/event; sink ${fmtCores(at(go, c)?.cpu.sink?.cores)}; others ${fmtCores(at(go, c)?.cpu.other?.cores)}`);
      ctx.figure(C, `d.c${c}`, `(d) raw undici POST, c=${c}`, at(post, c)?.perSecond, 'per_second', `client ${fmtCores(at(post, c)?.cpu.floor?.cores)}, sink ${fmtCores(at(post, c)?.cpu.sink?.cores)}`);
      ctx.figure(C, `e.c${c}`, `(e) raw JetStream consume+ack, max_messages=${c}`, at(consume, c)?.perSecond, 'per_second');
      ctx.figure(C, `ratio.c${c}`, `  (a) ÷ (c) at c=${c}`, ratio(at(a, c)?.perSecond, at(io, c)?.perSecond), 'ratio');
      ctx.figure(C, `ratioGo.c${c}`, `  (a) ÷ (g) at c=${c}`, ratio(at(a, c)?.perSecond, at(go, c)?.perSecond), 'ratio');
    }

    const L = `latency, publish → sink, ${latencyEvents} events published at ${pacedRate}/s while consuming, c=${cBest}`;
    for (const [key, r] of [['ferry', latA], ['io', latIo]] as const) {
      const who = key === 'ferry' ? 'Ferry (mapping)' : 'I/O floor';
      ctx.figure(L, `latency.${key}.p50`, `${who} p50`, r.latency?.p50, 'ms');
      ctx.figure(L, `latency.${key}.p90`, `${who} p90`, r.latency?.p90, 'ms');
      ctx.figure(L, `latency.${key}.p99`, `${who} p99`, r.latency?.p99, 'ms');
      ctx.figure(L, `latency.${key}.p999`, `${who} p99.9`, r.latency?.p999, 'ms');
      ctx.figure(L, `latency.${key}.max`, `${who} max`, r.latency?.max, 'ms', `${r.received}/${latencyEvents} received`);
    }
    ctx.figure('machine', 'machine.cores', 'CPU cores (operator, servers, sink and floors share them)', machineFacts().cores, 'count');

    ctx.details.runs = { a, b, io, go, post, consume, twoReplicas, latency: { ferry: latA, io: latIo } };
    ctx.details.operatorRssTimeline = aUsage?.timeline ?? [];
    ctx.notes.push(
      `throughput: W=${settings.warmup} warm-up then N=${settings.events} measured events published (PubAck awaited) before consuming starts; events/s = (N − 1) ÷ (sink receive time of the last − first measured event)`,
      `latency: ${latencyEvents} events published at ${pacedRate}/s (FERRY_BENCH_LATENCY_RATE, default 1,000/s as issue 11 goal 3 states it) while consuming, after a ${LATENCY_WARMUP}-event warm-up backlog and ${LATENCY_PACED_WARMUP_S} s of paced warm-up events in the same schedule (not measured); publish time taken just before js.publish, receive time in the sink, both on CLOCK_MONOTONIC`,
      `Ferry: rateLimit ${RATE_LIMIT_PER_SECOND}/s (the API's maximum; never binds here), circuit breaker 5 failures/30s, metrics, KV status counters, log level info, SSRF guard with --allow-cidrs=127.0.0.1/32; HttpDeliverer pool ${FERRY_CONNECTIONS_PER_ORIGIN} connections/origin, the floors' pools the same`,
      `Go worker (g): nats.go ${versions.natsGo} jetstream Consume (max_messages = c, heartbeat 5 s, expiry 30 s), c goroutines, santhosh-tekuri/jsonschema ${versions.jsonschemaGo} (formats asserted), mapping by hand, net/http Transport with MaxConnsPerHost = MaxIdleConnsPerHost = ${FERRY_CONNECTIONS_PER_ORIGIN}, plain Ack like the I/O floor (Ferry waits for the server to confirm its acks), GOMAXPROCS = ${goMaxProcs ?? `Go's default (${machineFacts().cores})`}`,
      'CPU figures are taken between the first and the last sink poll of a run (50 ms apart), per measured event',
      'the bench process (publisher), the operator, nats-server, the sink, kube-apiserver and etcd share this machine',
    );
    ctx.notes.push(`latency tail (events ≥ p99, grouped by publish time): Ferry: ${fmtTail(latA)} | I/O floor: ${fmtTail(latIo)}`);
    ctx.notes.push(`operator garbage collections during the paced phase (its own ferry_process_nodejs_gc_duration_seconds): ${fmtGc(latA.gc)}`);
    ctx.details.latencyGc = latA.gc;
    if (e.disturbed.size > 0) {
      ctx.notes.push(
        `runs disturbed by other work on the machine in all ${MAX_ATTEMPTS} attempts (cores used by others during the last): ${[...e.disturbed].map(([l, c]) => `${l} ${c.toFixed(2)}`).join(', ')}`,
      );
    }
    if (e.busyStarts.size > 0) {
      ctx.notes.push(
        `runs started on a busy machine (no quiet second within ${settings.quietWaitMs / 1000} s; cores in use): ${[...e.busyStarts].map(([l, c]) => `${l} ${c?.toFixed(2) ?? '?'}`).join(', ')}`,
      );
    }
    if (Object.keys(warned).length > 0) ctx.notes.push(`operator warnings/errors: ${JSON.stringify(warned)}`);
    if (profiles.mapping) ctx.notes.push(profileNote(`profile, (a) mapping at c=${cBest}`, profiles.mapping));
    if (profiles.jsonata) ctx.notes.push(profileNote(`profile, (b) JSONata at c=${cBest}`, profiles.jsonata));
    if (profiles.ioFloor) ctx.notes.push(profileNote(`profile, (c) I/O floor at c=${cBest}`, profiles.ioFloor));
    const runs = [...a, ...b, ...io, ...go, ...post, ...consume, ...(twoReplicas ? [twoReplicas] : [])];
    const incomplete = runs.filter((r) => !r.complete).map((r) => r.label);
    if (!latA.complete || !latIo.complete) incomplete.push('latency');
    if (incomplete.length > 0) ctx.notes.push(`incomplete runs: ${incomplete.join(', ')}`);
    return incomplete.length === 0 ? 'complete' : 'incomplete';
  } finally {
    await operator?.op.stop().catch(() => undefined);
    await setup.close();
  }
}

await runBenchmark({ name: NAME, title: 'Integration pipeline throughput and latency, against the I/O floor, a Go worker, raw POST and raw consume in the same run' }, bench);
