/**
 * sharding: issue 11, goal 5 — when one process is not enough, more replicas, not a bigger
 * machine. N Integrations (3,000) run first on one operator process, then on three with
 * `--pipeline-replicas=1`; each process's resident memory is read once its pipelines run
 * (`ferry_pipelines` steady). Then one of the three is SIGKILLed and the time until the other two
 * run all N is measured (the members bucket's TTL of 15 s plus a heartbeat read bounds it).
 *
 * Phases, against one local control plane (etcd + kube-apiserver + nats-server):
 * 1. one process — creates the N Integrations (32 in flight) and waits until it runs N
 *    pipelines; RSS read after a settling pause, VmHWM at the end; then stopped (SIGTERM).
 * 2. three processes — the same objects (already provisioned); waits until their
 *    `ferry_pipelines` add up to N; RSS of each after the same pause.
 * 3. SIGKILL of one — time until the two survivors' `ferry_pipelines` add up to N.
 *
 * Environment: FERRY_BENCH_SHARD_N (3000), FERRY_BENCH_TIMEOUT_S (900, per phase),
 * FERRY_BENCH_SETTLE_S (10, pause before RSS is read), FERRY_BENCH_LOG_LEVEL (info).
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../test/env/control-plane.ts';
import { installCrds } from '../test/support/crds.ts';
import { integrationSpec } from '../test/support/ferry-client.ts';
import { startOperator, type OperatorProcess } from '../test/support/operator-process.ts';
import { intEnv } from './lib/pipeline-common.ts';
import { RawKube } from './lib/kube-raw.ts';
import { readProcMemory } from './lib/proc.ts';
import { parsePrometheusText, sumSamples } from './lib/prometheus.ts';
import { RATIOS_GROUP, runBenchmark, type BenchContext } from './lib/result.ts';
import { ratio } from './lib/stats.ts';
import { delay, mapLimit, now } from './lib/timing.ts';

const NAME = 'sharding';
const NS = 'bench-shard';
/** nats-server 2.15 refuses a 1,001st consumer on one stream (maximum consumers limit reached). */
const CONSUMERS_PER_STREAM = 1_000;
const sourceStream = (i: number): string => `CRM_EVENTS_${String(Math.floor(i / CONSUMERS_PER_STREAM))}`;
const PARALLELISM = 32;
const MIB = 1024 * 1024;
/** Polls (250 ms apart) the pipeline counts must hold still for before they count as settled. */
const STABLE_POLLS = 8;

async function pipelinesOf(op: OperatorProcess): Promise<number> {
  try {
    return sumSamples(parsePrometheusText(await op.metrics()), 'ferry_pipelines') ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Polls until the processes' `ferry_pipelines` add up to `n`, each runs some, and the counts held
 * still for {@link STABLE_POLLS} polls (a process that saw itself alone first runs everything
 * until the others' heartbeats arrive, and then drains); the time it took, or undefined at the
 * deadline.
 */
async function untilRunning(ops: readonly OperatorProcess[], n: number, timeoutMs: number, ctx: BenchContext, what: string): Promise<number | undefined> {
  const started = now();
  let lastLog = started;
  let previous = '';
  let stable = 0;
  for (;;) {
    const counts = await Promise.all(ops.map(pipelinesOf));
    const sum = counts.reduce((a, b) => a + b, 0);
    const key = counts.join(',');
    stable = key === previous ? stable + 1 : 0;
    previous = key;
    if (sum === n && counts.every((c) => c > 0) && stable >= STABLE_POLLS) return now() - started;
    if (now() - started > timeoutMs) return undefined;
    if (now() - lastLog > 10_000) {
      lastLog = now();
      ctx.log(`${what}: ${counts.join(' + ')} of ${n} pipelines running`);
    }
    await delay(250);
  }
}

function memoryOf(op: OperatorProcess): { rssBytes: number; hwmBytes: number } | undefined {
  const pid = op.process.pid;
  return pid === undefined ? undefined : readProcMemory(pid);
}

async function bench(ctx: BenchContext): Promise<'complete' | 'incomplete'> {
  const n = intEnv('FERRY_BENCH_SHARD_N', 3_000);
  const timeoutMs = intEnv('FERRY_BENCH_TIMEOUT_S', 900) * 1000;
  const settleMs = intEnv('FERRY_BENCH_SETTLE_S', 10) * 1000;
  const logLevel = process.env.FERRY_BENCH_LOG_LEVEL ?? 'info';
  Object.assign(ctx.params, { integrations: n, processes: 3, pipelineReplicas: 1, parallelism: PARALLELISM, settleSeconds: settleMs / 1000, operatorLogLevel: logLevel });

  let env: ControlPlane | undefined;
  let nc: NatsConnection | undefined;
  let raw: RawKube | undefined;
  const ops: OperatorProcess[] = [];
  const launch = async (identity: string): Promise<OperatorProcess> => {
    const op = await startOperator({ env: env as ControlPlane, identity, args: ['--pipeline-replicas=1'], envVars: { FERRY_LOG_LEVEL: logLevel } });
    ops.push(op);
    return op;
  };
  try {
    ctx.log('starting etcd, kube-apiserver and nats-server');
    env = await startControlPlane();
    await installCrds(env.kubeConfig);
    raw = await RawKube.create(env.kubeConfig, { connections: PARALLELISM + 4 });
    await raw.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    nc = await connect({ servers: env.natsUrl });
    const jsm = await jetstreamManager(nc);
    for (let k = 0; k * CONSUMERS_PER_STREAM < n; k++) await jsm.streams.add({ name: sourceStream(k * CONSUMERS_PER_STREAM), subjects: [`crm${String(k)}.>`] });

    // 1. One process.
    ctx.log(`one process: creating ${n} Integrations, ${PARALLELISM} in flight`);
    const single = await launch('shard-single');
    await single.waitForLog((l) => l.msg === 'controller started' && l.controller === 'integration', 60_000);
    const rawKube = raw;
    await mapLimit(
      Array.from({ length: n }, (_, i) => i),
      PARALLELISM,
      async (i) => {
        const name = `ig-${String(i).padStart(5, '0')}`;
        await rawKube.request('POST', `/apis/ferry.dev/v1alpha1/namespaces/${NS}/integrations`, {
          apiVersion: 'ferry.dev/v1alpha1',
          kind: 'Integration',
          metadata: { name },
          spec: integrationSpec({ source: { stream: sourceStream(i), subjects: [`crm${String(Math.floor(i / CONSUMERS_PER_STREAM))}.${name}`] }, target: { url: `https://billing.example.com/v1/${name}` } }),
        });
      },
    );
    const singleMs = await untilRunning([single], n, timeoutMs, ctx, 'one process');
    ctx.log(`one process: ${n} pipelines running after ${String(singleMs)} ms; settling ${settleMs} ms`);
    await delay(settleMs);
    const singleMem = memoryOf(single);
    ctx.log(`one process: RSS ${((singleMem?.rssBytes ?? 0) / MIB).toFixed(0)} MiB, peak ${((singleMem?.hwmBytes ?? 0) / MIB).toFixed(0)} MiB`);
    await single.stop();

    // 2. Three processes.
    ctx.log('three processes, --pipeline-replicas=1');
    // Started together, as a Deployment's pods are.
    const three = await Promise.all(['shard-0', 'shard-1', 'shard-2'].map(launch));
    const threeMs = await untilRunning(three, n, timeoutMs, ctx, 'three processes');
    // Until every process has counted the others, a process may still run more than its share.
    await delay(settleMs);
    const spread = await Promise.all(three.map(pipelinesOf));
    const threeMem = three.map(memoryOf);
    const firstChanges = await Promise.all(three.map(async (op) => sumSamples(parsePrometheusText(await op.metrics()), 'ferry_pipeline_assignment_changes_total', { change: 'unassigned' }) ?? 0));
    ctx.log(`three processes: ${spread.join(' / ')} pipelines after ${String(threeMs)} ms; RSS ${threeMem.map((m) => ((m?.rssBytes ?? 0) / MIB).toFixed(0)).join(' / ')} MiB`);

    // 3. SIGKILL one.
    const [victim, ...survivors] = three;
    await victim?.kill();
    ctx.log('SIGKILLed one; waiting for the other two to run everything');
    const takeoverMs = await untilRunning(survivors, n, timeoutMs, ctx, 'two survivors');
    const survivorSpread = await Promise.all(survivors.map(pipelinesOf));
    ctx.log(`two survivors: ${survivorSpread.join(' / ')} pipelines, ${String(takeoverMs)} ms after the kill`);

    const maxThree = Math.max(...threeMem.map((m) => m?.rssBytes ?? 0));
    ctx.figure(RATIOS_GROUP, 'ratio.shardRssVsSingle', 'RSS of the largest of 3 processes ÷ RSS of 1 process running all', ratio(maxThree, singleMem?.rssBytes), 'ratio', 'ideal ≈ 1/3 plus the per-process base (caches of every object, connections)');
    const G1 = `one process, ${n} Integrations`;
    ctx.figure(G1, 'single.rss', 'RSS with every pipeline running', singleMem?.rssBytes, 'bytes');
    ctx.figure(G1, 'single.hwm', 'peak RSS (VmHWM)', singleMem?.hwmBytes, 'bytes');
    ctx.figure(G1, 'single.ms', 'create → all pipelines running', singleMs, 'ms');
    const G3 = `three processes, --pipeline-replicas=1`;
    for (const [i, m] of threeMem.entries()) {
      ctx.figure(G3, `three.${i}.rss`, `process ${i}: RSS (${String(spread[i])} pipelines)`, m?.rssBytes, 'bytes', `peak ${((m?.hwmBytes ?? 0) / MIB).toFixed(0)} MiB`);
    }
    ctx.figure(G3, 'three.ms', 'start → all pipelines running across the three', threeMs, 'ms');
    ctx.figure(G3, 'three.maxShare', 'largest share of the Integrations on one process', n === 0 ? undefined : Math.max(...spread) / n, 'ratio', 'ideal 0.33');
    ctx.figure(G3, 'three.startChurn', 'pipelines drained again at the start (a process saw itself alone before the others\' heartbeats)', firstChanges.reduce((a, b) => a + b, 0), 'count');
    ctx.figure(G3, 'three.takeoverMs', 'SIGKILL of one → the other two run all', takeoverMs, 'ms', 'bound: members TTL 15 s + a 3 s heartbeat read');
    ctx.details.spread = { three: spread, survivors: survivorSpread };
    ctx.notes.push(
      `the Integrations are spread over ${String(Math.ceil(n / CONSUMERS_PER_STREAM))} source streams: nats-server refuses more than ${String(CONSUMERS_PER_STREAM)} consumers on one stream`,
      'the Integrations target an address that is never called (no events are published): the figures are of pipelines held, idle',
      'RSS (VmRSS) is read after a settling pause; VmHWM also holds what a process compiled before the others\' heartbeats reached it (a cold start of all replicas at once)',
      'RSS is read after a settling pause with every assigned pipeline running; every process also caches every Integration object (the watch), so the per-process base does not shrink with sharding',
    );
    return singleMs !== undefined && threeMs !== undefined && takeoverMs !== undefined ? 'complete' : 'incomplete';
  } finally {
    await Promise.all(ops.map((o) => o.stop().catch(() => undefined)));
    await nc?.close().catch(() => undefined);
    await raw?.close().catch(() => undefined);
    await env?.stop();
  }
}

await runBenchmark({ name: NAME, title: 'Pipelines sharded across 3 operator processes: memory per process against one process running all, and take-over after a SIGKILL' }, bench);
