/**
 * pipeline-cluster: the Integration pipeline on a 3-node JetStream cluster — what production runs
 * (the official NATS Helm chart's default) — against the I/O floor on the same cluster, in the
 * same run.
 *
 * One local control plane with a 3-node nats-server cluster (test/env/nats-cluster.ts), the
 * source stream with 3 replicas, one HTTP sink in its own process, and one `ferry controller`
 * given all three URLs with its default `--nats-replicas=auto`, so its fallback streams and KV
 * buckets get 3 replicas too (checked and reported before the runs). Every JetStream write —
 * each publish, each ack, the status counters in KV — is then a replicated (Raft) write.
 *
 * (a) Ferry, mapping — the `pipeline` benchmark's (a): every production mechanism on (JSON
 *     Schema, six-field mapping, rate limit, circuit breaker, metrics, KV status counters, info
 *     logs); a backlog of W + N events published before the Integration is created; events/s =
 *     (N − 1) ÷ (sink receive time of the last − first measured event).
 * (c) I/O floor — the same consume (same consumer config on the same R3 stream) + undici POST +
 *     ack, nothing else, in its own process, same backlog and rate definition.
 * Pairs alternate which goes first, FERRY_BENCH_ROUNDS times per concurrency; the median per
 * concurrency is reported and the best concurrency of (a) is the headline.
 *
 * Environment: FERRY_BENCH_EVENTS (20000), FERRY_BENCH_WARMUP_EVENTS (2000),
 * FERRY_BENCH_CLUSTER_CONCURRENCY (16,64), FERRY_BENCH_ROUNDS (3), FERRY_BENCH_TIMEOUT_S (300),
 * FERRY_BENCH_QUIET_WAIT_S (120). The single-server figures are the `pipeline` benchmark's.
 */
import { machineFacts } from './lib/machine.ts';
import { FERRY_CONNECTIONS_PER_ORIGIN, intEnv, intListEnv } from './lib/pipeline-common.ts';
import {
  collection,
  ferryRun,
  ferryAndFloor,
  fmtCores,
  integrationSpec,
  launchOperator,
  medianAt,
  NS,
  setupPipelineEnv,
  STREAM,
  SUBJECT_ROOT,
  waitForIntegrationGone,
  waitReady,
  type Env,
  type Operator,
  type RunResult,
  type Settings,
} from './lib/pipeline-runs.ts';
import { RATIOS_GROUP, runBenchmark, type BenchContext } from './lib/result.ts';
import { ratio } from './lib/stats.ts';

const NAME = 'pipeline-cluster';
const NODES = 3;

/** CPU of every nats-server node together during a run, in cores. */
function natsCores(r: RunResult | undefined): number | undefined {
  if (!r) return undefined;
  const nodes = Object.entries(r.cpu).filter(([name]) => /^nats\d+$/.test(name));
  if (nodes.length === 0) return undefined;
  return nodes.reduce((sum, [, w]) => sum + (w?.cores ?? 0), 0);
}

/** Creates one Integration, waits until it is Ready and reads the replicas of what Ferry made for it. */
async function replicasOfFerryResources(e: Env): Promise<Record<string, number>> {
  const name = 'replicas-check';
  await e.raw.request('POST', collection, {
    apiVersion: 'ferry.dev/v1alpha1',
    kind: 'Integration',
    metadata: { name },
    spec: integrationSpec(`${SUBJECT_ROOT}.${name}`, e.sink.url, 'mapping', 16),
  });
  await waitReady(e.raw, name, 60_000);
  const out: Record<string, number> = {};
  for (const stream of [STREAM, `FERRY_FALLBACK_${NS}_${name}`, 'KV_ferry_integrations', 'KV_ferry_members', 'KV_ferry_attempts']) {
    out[stream] = (await e.jsm.streams.info(stream)).config.num_replicas;
  }
  await e.raw.request('DELETE', `${collection}/${name}`);
  await waitForIntegrationGone(e.raw, name, 60_000);
  return out;
}

async function bench(ctx: BenchContext): Promise<'complete' | 'incomplete'> {
  const settings: Settings = {
    events: intEnv('FERRY_BENCH_EVENTS', 20_000),
    warmup: intEnv('FERRY_BENCH_WARMUP_EVENTS', 2_000),
    timeoutMs: intEnv('FERRY_BENCH_TIMEOUT_S', 300) * 1000,
    quietWaitMs: intEnv('FERRY_BENCH_QUIET_WAIT_S', 120) * 1000,
  };
  const concurrencies = intListEnv('FERRY_BENCH_CLUSTER_CONCURRENCY', [16, 64]);
  const rounds = intEnv('FERRY_BENCH_ROUNDS', 3);
  Object.assign(ctx.params, {
    natsNodes: NODES,
    events: settings.events,
    warmupEvents: settings.warmup,
    concurrency: concurrencies.join(','),
    rounds,
    connectionsPerOrigin: FERRY_CONNECTIONS_PER_ORIGIN,
    operatorLogLevel: 'info',
    published: 'before consuming (backlog)',
  });

  ctx.log(`starting etcd, kube-apiserver and a ${NODES}-node nats-server cluster`);
  const setup = await setupPipelineEnv(ctx, settings, { natsCluster: NODES });
  const e = setup.env;
  const cp = e.cp;
  let operator: Operator | undefined;
  try {
    ctx.log('starting the operator (log level info, --nats-replicas auto)');
    operator = await launchOperator({ cp, ctx }, 'bench-cluster');
    const o = operator;
    const replicas = await replicasOfFerryResources(e);
    ctx.details.replicas = replicas;
    ctx.log(`replicas: ${JSON.stringify(replicas)}`);

    ctx.log('warm-up run (not measured)');
    await ferryRun(e, o, 'warm-up', 'mapping', concurrencies[0] ?? 64, Math.min(settings.events, 5_000), 500);

    const a: RunResult[] = [];
    const io: RunResult[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const c of concurrencies) {
        const pair = await ferryAndFloor(e, o, c, round);
        a.push(pair.ferry);
        io.push(pair.floor);
      }
    }

    const medians = concurrencies.flatMap((c) => medianAt(a, c) ?? []);
    const bestA = medians.reduce<RunResult | undefined>((acc, r) => ((r.perSecond ?? -1) > (acc?.perSecond ?? -1) ? r : acc), undefined);
    const cBest = bestA?.concurrency ?? concurrencies[0] ?? 64;
    const ioAtBest = medianAt(io, cBest);
    const ioMedians = concurrencies.flatMap((c) => medianAt(io, c) ?? []);
    const bestIo = ioMedians.reduce<RunResult | undefined>((acc, r) => ((r.perSecond ?? -1) > (acc?.perSecond ?? -1) ? r : acc), undefined);

    const R = RATIOS_GROUP;
    ctx.figure(R, 'ratio.clusterPipelineVsIoFloor', `(a) ÷ (c) I/O floor on the ${NODES}-node cluster, events/s, c=${cBest}`, ratio(bestA?.perSecond, ioAtBest?.perSecond), 'ratio', 'R3 source, R3 fallback and KV');
    ctx.figure(R, 'ratio.clusterPipelineVsIoFloorBest', '(a) best ÷ (c) best, events/s', ratio(bestA?.perSecond, bestIo?.perSecond), 'ratio', `(c) best at c=${String(bestIo?.concurrency)}`);
    ctx.figure(R, 'ratio.clusterCpuPerEvent', `CPU per event: operator ÷ I/O floor process, c=${cBest}`, ratio(bestA?.cpu.operator?.usPerEvent, ioAtBest?.cpu.floor?.usPerEvent), 'ratio');

    const A = `(a) Ferry pipeline on the ${NODES}-node cluster, best of c=${concurrencies.join(',')} (median of ${rounds} rounds)`;
    ctx.figure(A, 'a.perSecond', `events/s (c=${cBest})`, bestA?.perSecond, 'per_second', `${settings.events} events, backlog`);
    ctx.figure(A, 'a.operatorUsPerEvent', 'operator CPU µs per event', bestA?.cpu.operator?.usPerEvent, 'count', `I/O floor: ${ioAtBest?.cpu.floor?.usPerEvent.toFixed(0) ?? '—'} µs`);
    ctx.figure(A, 'a.natsCores', `nats-server CPU use, ${NODES} nodes together`, natsCores(bestA), 'cores', `I/O floor: ${fmtCores(natsCores(ioAtBest))}`);
    ctx.figure(A, 'a.machineCores', 'whole machine CPU use while delivering', bestA?.cpu.machine?.cores, 'cores', `of ${machineFacts().cores}`);
    ctx.figure(A, 'a.duplicates', 'duplicate deliveries at the sink, all (a) runs', a.reduce((s, r) => s + r.duplicates, 0), 'count');
    ctx.figure(A, 'a.fallbackReplicas', 'replicas of the fallback stream Ferry created', replicas[`FERRY_FALLBACK_${NS}_replicas-check`], 'count', `KV ferry_integrations: ${String(replicas.KV_ferry_integrations)}, source: ${String(replicas[STREAM])}`);

    const C = `events/s by concurrency, median of ${rounds} rounds (backlog of N)`;
    for (const c of concurrencies) {
      ctx.figure(C, `a.c${c}`, `(a) Ferry, mapping, c=${c}`, medianAt(a, c)?.perSecond, 'per_second', `operator ${fmtCores(medianAt(a, c)?.cpu.operator?.cores)}, nats ${fmtCores(natsCores(medianAt(a, c)))}`);
      ctx.figure(C, `c.c${c}`, `(c) I/O floor, c=${c}`, medianAt(io, c)?.perSecond, 'per_second', `floor ${fmtCores(medianAt(io, c)?.cpu.floor?.cores)}, nats ${fmtCores(natsCores(medianAt(io, c)))}`);
      ctx.figure(C, `ratio.c${c}`, `  (a) ÷ (c) at c=${c}`, ratio(medianAt(a, c)?.perSecond, medianAt(io, c)?.perSecond), 'ratio');
    }
    ctx.figure('machine', 'machine.cores', `CPU cores (operator, ${NODES} nats-servers, sink and floor share them)`, machineFacts().cores, 'count');

    ctx.details.runs = { a, io };
    ctx.notes.push(
      `throughput: W=${settings.warmup} warm-up then N=${settings.events} measured events published (PubAck awaited, R${NODES}) before consuming starts; events/s = (N − 1) ÷ (sink receive time of the last − first measured event)`,
      `the ${NODES} nats-server nodes, the operator, the sink, the floor, kube-apiserver and etcd share this machine: a replicated write costs CPU on every node`,
      'single-server figures for the same pipeline: the `pipeline` benchmark',
    );
    if (e.disturbed.size > 0) ctx.notes.push(`runs disturbed by other work on the machine: ${[...e.disturbed].map(([l, c]) => `${l} ${c.toFixed(2)}`).join(', ')}`);
    if (e.busyStarts.size > 0) ctx.notes.push(`runs started on a busy machine: ${[...e.busyStarts].map(([l, c]) => `${l} ${c?.toFixed(2) ?? '?'}`).join(', ')}`);
    const wrongReplicas = Object.entries(replicas).filter(([, n]) => n !== NODES);
    if (wrongReplicas.length > 0) ctx.notes.push(`not replicated ${NODES}×: ${JSON.stringify(Object.fromEntries(wrongReplicas))}`);
    const incomplete = [...a, ...io].filter((r) => !r.complete).map((r) => r.label);
    if (incomplete.length > 0) ctx.notes.push(`incomplete runs: ${incomplete.join(', ')}`);
    return incomplete.length === 0 && wrongReplicas.length === 0 ? 'complete' : 'incomplete';
  } finally {
    await operator?.op.stop().catch(() => undefined);
    await setup.close();
  }
}

await runBenchmark({ name: NAME, title: 'Integration pipeline on a 3-node JetStream cluster (R3 source, fallback and KV), against the I/O floor on the same cluster' }, bench);
