/**
 * sync: how fast one operator runs a SyncSchedule over 100,000 source records, against the raw
 * limits of the same source and target APIs measured in the same run, reported as ratios.
 *
 * One local control plane (etcd + kube-apiserver + nats-server, test/support/runtime-harness.ts),
 * a fake CRM (the source) and fake ERPs (the targets) from test/support/sync-apis.ts, both in this
 * process, and one `ferry controller` process (log level info, `--allow-cidrs=127.0.0.1/32`).
 * The CRM holds N contacts (`contacts(N)`, `updatedAt` one second apart, ending an hour ago).
 *
 * The SyncSchedule is test/support/sync-harness.ts's `syncSpec`, adjusted: Cursor pagination,
 * limit 1000 per page, incremental on `/updatedAt` with `safetyLag: 0s` and a `lookback` longer
 * than the whole data set (so every run after the first still reads all N records: the runs
 * (b) and (c) are honest full re-reads, and the schedule keeps its content hashes), the
 * `mapping` transform, one PUT per record to `/records/{{/id}}` with bearer auth on both sides,
 * request timeouts 30 s, no rate limit, ERP without throttling. Runs are triggered with
 * `ferry.dev/run-now`; a run's duration is `finishedAt − startedAt` from its status.
 *
 * (a) first sync — Ferry's first run (reads N, writes N) against the write floor: a bare Node
 *     process (this file, forked with FERRY_SYNC_FLOOR_CONFIG) that reads every page of the
 *     same CRM endpoint with an undici Pool and PUTs every record's mapped body to a fresh ERP
 *     with an Idempotency-Key, at most WRITE_CONCURRENCY (src/sync/sync-run.ts) in flight, page
 *     by page like a run. Each side writes into an ERP of its own that starts empty. The floor
 *     runs before and after Ferry (a fresh ERP each time) and its duration is their mean.
 *     Ratio: Ferry records/s ÷ floor records/s.
 * (b) unchanged full re-sync — a Ferry run after (a) (reads N, writes none) against the read floor:
 *     the same page reads, no writes. Ratio: duration ÷ duration (goal ≤ 1.2). The run's
 *     `written` and the ERP's applied writes and requests must be 0.
 * (c) 1% changed — N/100 records updated in the CRM (new amount, `updatedAt` = now), then a
 *     Ferry run (reads N, writes N/100) against the floor reading every page and PUTting the
 *     changed records. Ratio: duration ÷ duration. Exactly the changed ids must be written.
 *     (b) and (c) last seconds, so one busy second on a shared machine moves them: each is run
 *     FERRY_BENCH_ROUNDS times (Ferry and floor alternating which goes first; every round of (c)
 *     changes another 1%), and the ratio is of the median durations.
 * (d) memory and state — the operator's VmHWM (peak RSS, read from /proc at the end) and its
 *     VmRSS sampled every 250 ms across the runs; the state bucket's stream
 *     (`KV_ferry_sync_<ns>_<name>`): bytes and messages, per 100k keys.
 * What bounds it — CPU per process over each run (operator, floor, this process which serves the
 *     CRM and the ERP, nats-server); Ferry's own KV code (`SharedKv.putMany` in chunks of a page,
 *     `SharedKv.snapshot`) timed alone on N keys in a scratch bucket, from this process.
 *
 * The floors are forked processes, not loops in this process: this process serves the CRM and
 * the ERP on its one event loop, and a client loop sharing that thread would be slowed by the
 * servers (and slow them), which the operator — a process of its own — is not.
 *
 * Environment: FERRY_BENCH_SYNC_RECORDS (100000), FERRY_BENCH_SYNC_PAGE (1000),
 * FERRY_BENCH_ROUNDS (3, for (b) and (c)), FERRY_BENCH_TIMEOUT_S (600, per run),
 * FERRY_BENCH_QUIET_WAIT_S (10: before each measured run, wait up to this long for a second in
 * which the machine used < 0.4 cores), FERRY_BENCH_SYNC_KV=0 skips the KV component timings.
 */
import { fork } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Kvm } from '@nats-io/kv';
import { Pool } from 'undici';
import { SharedKv, syncStateBucketName } from '../src/nats/index.ts';
import { contentHash, keyToken } from '../src/sync/index.ts';
import type { LogLine, OperatorProcess } from '../test/support/operator-process.ts';
import { NS, setupRuntimeEnv, type RuntimeEnv } from '../test/support/runtime-harness.ts';
import { contacts, startCrm, startErp, type Crm, type CrmRecord, type Erp } from '../test/support/sync-apis.ts';
import { applySyncSchedule, CRM_TOKEN, ERP_TOKEN, putTokens, runNow, syncSpec, type SyncRunStatus } from '../test/support/sync-harness.ts';
import { gitCommit, machineFacts } from './lib/machine.ts';
import { FERRY_CONNECTIONS_PER_ORIGIN, intEnv } from './lib/pipeline-common.ts';
import { cpuBetween, cpuSnapshot, MAIN_THREAD, waitForQuietMachine, type CpuWindow } from './lib/pipeline-cpu.ts';
import { ProcessSampler, readProcExe, readProcMemory } from './lib/proc.ts';
import { parsePrometheusText, sumSamples } from './lib/prometheus.ts';
import { RATIOS_GROUP, runBenchmark, type BenchContext } from './lib/result.ts';
import { ratio } from './lib/stats.ts';
import { now } from './lib/timing.ts';

const NAME = 'sync';
const FLOOR_ENV = 'FERRY_SYNC_FLOOR_CONFIG';
const SCHEDULE = 'bench';
/** Machine CPU use below which a run starts (the idle control plane and operator use ~0.1–0.2). */
const QUIET_CORES = 0.4;
/** Processes whose main thread's CPU is read apart (`<name>.mainThread`): is the event loop the limit? */
const MAIN_THREADS = ['operator', 'floor'];
/** Goals: (a) as the pipeline benchmark's throughput aim; (b) from the brief; (c) as (b), being mostly a read. */
const GOAL_FIRST_SYNC = 0.9;
const GOAL_RESYNC = 1.2;
const GOAL_CHANGED = 1.2;

// ————————————————————————————————————————————————————————————————————— the floor process

interface FloorConfig {
  readonly crmUrl: string;
  readonly erpUrl: string;
  readonly crmToken: string;
  readonly erpToken: string;
  readonly pageSize: number;
  readonly concurrency: number;
  readonly connections: number;
  /** `all`: PUT every record; `none`: read only; `since`: PUT the records with `updatedAt` ≥ `sinceMs`. */
  readonly write: 'all' | 'none' | 'since';
  readonly sinceMs?: number;
  /** Idempotency keys are `<keyPrefix>:<id>:<updatedAt>`. */
  readonly keyPrefix: string;
  /** Pages read (not timed, nothing written) before the timed loop: connections and JIT warm. */
  readonly warmupPages: number;
}

interface FloorResult {
  readonly pages: number;
  readonly records: number;
  readonly writes: number;
  readonly errors: number;
  /** First request sent → last answer read, ms. */
  readonly ms: number;
}

type ToChild = { readonly type: 'go' } | { readonly type: 'exit' };
type FromChild = { readonly type: 'ready' } | { readonly type: 'done'; readonly result: FloorResult } | { readonly type: 'failed'; readonly error: string };

function nextMessage(type: ToChild['type']): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if ((m as ToChild).type !== type) return;
      process.off('message', on);
      resolve();
    };
    process.on('message', on);
  });
}

/** The child side: a bare read (and write) loop over the same endpoints Ferry uses. */
async function floorChild(config: FloorConfig): Promise<void> {
  const send = (m: FromChild): void => {
    process.send?.(m);
  };
  const options = { connections: config.connections, pipelining: 1, keepAliveTimeout: 4_000, allowH2: false };
  const crm = new Pool(config.crmUrl, options);
  const erp = new Pool(config.erpUrl, options);
  const crmAuth = `Bearer ${config.crmToken}`;
  const erpAuth = `Bearer ${config.erpToken}`;
  const go = nextMessage('go');
  const exit = nextMessage('exit');
  try {
    const page = async (cursor: string | undefined): Promise<{ data: CrmRecord[]; next_cursor: string | null }> => {
      const query = `limit=${config.pageSize}${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const res = await crm.request({ path: `/cursor/contacts?${query}`, method: 'GET', headers: { accept: 'application/json', authorization: crmAuth } });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`CRM answered ${res.statusCode}: ${text.slice(0, 200)}`);
      return JSON.parse(text) as { data: CrmRecord[]; next_cursor: string | null };
    };
    let writes = 0;
    let errors = 0;
    const put = async (r: CrmRecord): Promise<void> => {
      try {
        const res = await erp.request({
          path: `/records/${encodeURIComponent(r.id)}`,
          method: 'PUT',
          headers: { authorization: erpAuth, 'content-type': 'application/json', 'idempotency-key': `${config.keyPrefix}:${r.id}:${r.updatedAt}` },
          // The mapping's output (test/support/sync-harness.ts MAPPING): the ERP does the same work for both sides.
          body: JSON.stringify({ id: r.id, fullName: r.name, email: r.email, amountCents: r.amount }),
        });
        await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) writes++;
        else errors++;
      } catch {
        errors++;
      }
    };
    /** At most `concurrency` PUTs in flight, page by page, as a run writes a page (its `pool`). */
    const writeAll = async (records: readonly CrmRecord[]): Promise<void> => {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < records.length) await put(records[next++] as CrmRecord);
      };
      await Promise.all(Array.from({ length: Math.min(config.concurrency, records.length) }, lane));
    };
    let cursor: string | undefined;
    for (let i = 0; i < config.warmupPages; i++) {
      const p = await page(cursor);
      cursor = p.next_cursor ?? undefined;
      if (cursor === undefined) break;
    }
    send({ type: 'ready' });
    await go;
    const since = config.sinceMs ?? 0;
    let pages = 0;
    let records = 0;
    const started = performance.now();
    cursor = undefined;
    for (;;) {
      const p = await page(cursor);
      pages++;
      records += p.data.length;
      if (config.write === 'all') await writeAll(p.data);
      else if (config.write === 'since') await writeAll(p.data.filter((r) => Date.parse(r.updatedAt) >= since));
      if (p.next_cursor === null || p.data.length === 0) break;
      cursor = p.next_cursor;
    }
    const ms = performance.now() - started;
    send({ type: 'done', result: { pages, records, writes, errors, ms } });
  } catch (err) {
    send({ type: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
  // Stay alive until the parent has read this process's CPU time from /proc.
  await exit;
  await Promise.all([crm.close(), erp.close()]);
  process.exit(0);
}

interface FloorProcess {
  readonly pid: number;
  readonly ready: Promise<void>;
  go(): void;
  readonly done: Promise<FloorResult>;
  release(): Promise<void>;
}

function forkFloor(config: FloorConfig): FloorProcess {
  const child = fork(import.meta.filename, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, [FLOOR_ENV]: JSON.stringify(config), FERRY_BENCH_RESULT_FILE: '' } });
  if (child.pid === undefined) throw new Error('the floor process has no pid');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  const done = new Promise<FloorResult>((resolve, reject) => {
    child.on('message', (raw) => {
      const m = raw as FromChild;
      if (m.type === 'ready') resolveReady();
      else if (m.type === 'done') resolve(m.result);
      else reject(new Error(`the floor failed: ${m.error}`));
    });
    void exited.then((code) => {
      reject(new Error(`the floor process exited (code ${String(code)}) without a result`));
    });
  });
  return {
    pid: child.pid,
    ready: Promise.race([ready, done.then(() => undefined)]),
    go() {
      child.send({ type: 'go' } satisfies ToChild);
    },
    done,
    async release() {
      if (child.exitCode === null && child.signalCode === null) child.send({ type: 'exit' } satisfies ToChild);
      await exited;
    },
  };
}

// ————————————————————————————————————————————————————————————————————— the benchmark

/** WRITE_CONCURRENCY as src/sync/sync-run.ts has it now (it is not exported), so the floor follows it. */
function ferryWriteConcurrency(): { readonly value: number; readonly fromSource: boolean } {
  try {
    const text = readFileSync(join(import.meta.dirname, '..', 'src', 'sync', 'sync-run.ts'), 'utf8');
    const m = /const WRITE_CONCURRENCY = (\d+);/.exec(text);
    if (m?.[1] !== undefined) return { value: Number(m[1]), fromSource: true };
  } catch {
    // fall through
  }
  return { value: 16, fromSource: false };
}


function warnings(lines: readonly LogLine[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) {
    if (l.level === 'warn' || l.level === 'error' || l.level === 'fatal') {
      const key = `${l.level}: ${l.msg ?? ''}`;
      out[key] = (out[key] ?? 0) + 1;
    }
  }
  return out;
}

const fmtCores = (w: CpuWindow | undefined): string => (w === undefined ? '—' : `${w.cores.toFixed(2)} cores`);
const fmtUs = (w: CpuWindow | undefined): string => (w === undefined ? '—' : `${w.usPerEvent.toFixed(0)} µs/record`);

function verdict(value: number | undefined, goal: number, higherIsBetter: boolean): string {
  const target = `goal ${higherIsBetter ? '≥' : '≤'} ${goal.toFixed(2)}`;
  if (value === undefined) return `${target} — not measured`;
  const met = higherIsBetter ? value >= goal : value <= goal;
  return `${target} — ${met ? 'met' : 'NOT met'}`;
}

function equalsGoal(value: number | undefined, want: number): string {
  return `goal = ${want} — ${value === want ? 'met' : 'NOT met'}`;
}

interface Measured {
  readonly ms: number;
  readonly records: number;
  readonly cpu: Record<string, CpuWindow | undefined>;
}

interface FerryMeasured extends Measured {
  readonly run: SyncRunStatus;
  /** Trigger (kubectl annotate) → finished run seen in status, ms. */
  readonly wallMs: number;
  /** V8 heap of the operator right after the run (its /metrics). */
  readonly heap: { readonly usedBytes: number | undefined; readonly totalBytes: number | undefined };
  /**
   * Where the run's time went, from the arrival times the CRM and the ERP recorded (this
   * process's Date.now(), the machine's clock like the run's startedAt/finishedAt): run start →
   * first page request (state load: watermark, hashes, failed index), first → last page request
   * (pages read, with the writes in between), last page request → run end (the last page's
   * work, the last hash flush, the watermark commit), and the first and last write's arrival.
   */
  readonly timeline: { readonly loadMs: number; readonly readMs: number; readonly tailMs: number; readonly firstWriteMs: number | undefined; readonly lastWriteMs: number | undefined } | undefined;
}

interface FloorMeasured extends Measured {
  readonly result: FloorResult;
}

/** The run of median duration (the upper one of an even count). */
function median<T extends Measured>(runs: readonly T[]): T {
  const sorted = [...runs].sort((x, y) => x.ms - y.ms);
  const m = sorted[Math.floor(sorted.length / 2)];
  if (m === undefined) throw new Error('no runs');
  return m;
}

const roundsNote = (runs: readonly Measured[]): string => `rounds: ${runs.map((m) => (m.ms / 1000).toFixed(2)).join(', ')} s`;

async function bench(ctx: BenchContext): Promise<'complete' | 'incomplete'> {
  const n = intEnv('FERRY_BENCH_SYNC_RECORDS', 100_000);
  const pageSize = intEnv('FERRY_BENCH_SYNC_PAGE', 1000);
  const timeoutMs = intEnv('FERRY_BENCH_TIMEOUT_S', 600) * 1000;
  const quietWaitMs = intEnv('FERRY_BENCH_QUIET_WAIT_S', 10) * 1000;
  const rounds = intEnv('FERRY_BENCH_ROUNDS', 3);
  const kvComponent = process.env.FERRY_BENCH_SYNC_KV !== '0';
  const concurrency = ferryWriteConcurrency();
  const changedCount = Math.max(1, Math.round(n / 100));
  // Records end an hour ago (none is newer than a run's start); the lookback covers them all.
  const lookbackDays = Math.ceil(n / 86_400) + 1;
  const lookback = `${lookbackDays}d`;
  const start = new Date(Math.floor(Date.now() / 1000 - n - 3600) * 1000).toISOString();
  Object.assign(ctx.params, {
    records: n,
    pageSize,
    writeConcurrency: concurrency.value,
    writeConcurrencyFrom: concurrency.fromSource ? 'src/sync/sync-run.ts' : 'assumed (not found in src/sync/sync-run.ts)',
    connectionsPerOrigin: FERRY_CONNECTIONS_PER_ORIGIN,
    changed: changedCount,
    rounds,
    lookback,
    operatorLogLevel: 'info',
    commit: gitCommit(),
  });
  const problems: string[] = [];
  const check = (ok: boolean, what: string): void => {
    if (!ok) {
      problems.push(what);
      ctx.log(`CHECK FAILED: ${what}`);
    }
  };
  const busyStarts: string[] = [];
  const quiet = async (label: string): Promise<void> => {
    const q = await waitForQuietMachine(quietWaitMs, QUIET_CORES);
    if (!q.quiet) busyStarts.push(`${label} ${q.busyCores?.toFixed(2) ?? '?'}`);
  };

  ctx.log('starting etcd, kube-apiserver and nats-server');
  const r: RuntimeEnv = await setupRuntimeEnv();
  const servers: (Crm | Erp)[] = [];
  let operator: OperatorProcess | undefined;
  try {
    await putTokens(r);
    const crm = await startCrm({ token: CRM_TOKEN });
    const erpFloor = await startErp({ token: ERP_TOKEN });
    const erpFerry = await startErp({ token: ERP_TOKEN });
    servers.push(crm, erpFloor, erpFerry);
    const seeded = contacts(n, start);
    crm.seed(seeded);
    // The CRM sorts lazily on the first list request after a change: not inside a measurement.
    const warmCrm = async (): Promise<void> => {
      const res = await fetch(`${crm.url}/cursor/contacts?limit=1`, { headers: { authorization: `Bearer ${CRM_TOKEN}` } });
      await res.text();
    };
    await warmCrm();
    ctx.log(`CRM seeded with ${n} contacts (${seeded[0]?.updatedAt} … ${seeded.at(-1)?.updatedAt})`);

    ctx.log('starting the operator (log level info)');
    process.env.FERRY_LOG_LEVEL = 'info';
    operator = await r.startOperator('bench-sync');
    const op = operator;
    const pid = op.process.pid;
    // The operator runs under `setpriv --pdeathsig`, which execs node: the pid must be node's own.
    if (pid === undefined || readProcExe(pid) !== realpathSync(process.execPath)) throw new Error(`operator pid ${String(pid)} is not a node process`);
    const alive = (): void => {
      if (!op.process.running) throw new Error(`the operator exited; log tail: ${op.process.tail().slice(-1500)}`);
    };
    const pids = { operator: pid, bench: process.pid, nats: r.env.processes.nats?.pid, apiServer: r.env.processes.apiServer?.pid, etcd: r.env.processes.etcd?.pid };

    const spec = syncSpec({
      name: SCHEDULE,
      crm,
      erp: erpFerry,
      limit: pageSize,
      spec: (s) => {
        const source = s.source as Record<string, unknown>;
        source.incremental = { param: 'updated_since', field: '/updatedAt', lookback, safetyLag: '0s' };
        source.timeout = '30s';
        (s.target as Record<string, unknown>).timeout = '30s';
      },
    });
    ctx.details.spec = spec;
    ctx.log('applying the SyncSchedule');
    await applySyncSchedule(r, SCHEDULE, spec);
    const startupMemory = readProcMemory(pid);
    const sampler = new ProcessSampler({ operator: pid }, 250).start();

    const floorRun = async (label: string, write: FloorConfig['write'], erp: Erp, sinceMs?: number): Promise<FloorMeasured> => {
      await quiet(label);
      ctx.log(`${label}: floor process (${write === 'none' ? 'read only' : write === 'all' ? 'read + PUT every record' : 'read + PUT the changed records'})`);
      const f = forkFloor({
        crmUrl: crm.url,
        erpUrl: erp.url,
        crmToken: CRM_TOKEN,
        erpToken: ERP_TOKEN,
        pageSize,
        concurrency: concurrency.value,
        connections: FERRY_CONNECTIONS_PER_ORIGIN,
        write,
        ...(sinceMs === undefined ? {} : { sinceMs }),
        keyPrefix: `floor-${label}`,
        warmupPages: 3,
      });
      try {
        await f.ready;
        const all = { ...pids, floor: f.pid };
        const a = cpuSnapshot(now(), all, MAIN_THREADS);
        f.go();
        const result = await f.done;
        const b = cpuSnapshot(now(), all, MAIN_THREADS);
        const cpu = cpuBetween(a, b, result.records);
        ctx.log(`${label}: ${result.records} records in ${result.pages} pages, ${result.writes} writes, ${result.errors} errors, ${(result.ms / 1000).toFixed(2)} s (${((result.records * 1000) / result.ms).toFixed(0)} records/s); floor ${fmtCores(cpu.floor)}, servers ${fmtCores(cpu.bench)}, other ${fmtCores(cpu.other)}`);
        return { ms: result.ms, records: result.records, cpu, result };
      } finally {
        await f.release();
      }
    };

    const ferryRun = async (label: string): Promise<FerryMeasured> => {
      alive();
      await quiet(label);
      ctx.log(`${label}: Ferry run (run-now)`);
      crm.resetCounters();
      erpFerry.resetCounters();
      const a = cpuSnapshot(now(), pids, MAIN_THREADS);
      const t0 = now();
      const run = await runNow(r, SCHEDULE, timeoutMs);
      const wallMs = now() - t0;
      const fetched = run.fetched ?? 0;
      const b = cpuSnapshot(now(), pids, MAIN_THREADS);
      const cpu = cpuBetween(a, b, Math.max(1, fetched));
      const ms = run.finishedAt === undefined ? Number.NaN : Date.parse(run.finishedAt) - Date.parse(run.startedAt);
      const pagesAt = crm.requests.filter((q) => q.path === '/cursor/contacts').map((q) => q.at);
      const writesAt = erpFerry.requests.map((q) => q.at);
      const startedMs = Date.parse(run.startedAt);
      const finishedMs = run.finishedAt === undefined ? Number.NaN : Date.parse(run.finishedAt);
      const firstPage = pagesAt[0];
      const lastPage = pagesAt.at(-1);
      const timeline =
        firstPage === undefined || lastPage === undefined
          ? undefined
          : {
              loadMs: firstPage - startedMs,
              readMs: lastPage - firstPage,
              tailMs: finishedMs - lastPage,
              firstWriteMs: writesAt[0] === undefined ? undefined : writesAt[0] - startedMs,
              lastWriteMs: writesAt.at(-1) === undefined ? undefined : (writesAt.at(-1) ?? 0) - startedMs,
            };
      const samples = parsePrometheusText(await op.metrics().catch(() => ''));
      const heap = { usedBytes: sumSamples(samples, 'ferry_process_nodejs_heap_size_used_bytes'), totalBytes: sumSamples(samples, 'ferry_process_nodejs_heap_size_total_bytes') };
      ctx.log(`${label}: ${run.result}, fetched ${fetched}, unchanged ${String(run.unchanged)}, written ${String(run.written)}, failed ${String(run.failed)} in ${(ms / 1000).toFixed(2)} s (trigger → status ${(wallMs / 1000).toFixed(2)} s); operator ${fmtCores(cpu.operator)} (main thread ${fmtCores(cpu[`operator${MAIN_THREAD}`])}) ${fmtUs(cpu.operator)}, servers ${fmtCores(cpu.bench)}, nats ${fmtCores(cpu.nats)}, other ${fmtCores(cpu.other)}`);
      check(run.result === 'Succeeded', `${label}: run result ${run.result}${run.message ? ` (${run.message})` : ''}`);
      check(run.failed === undefined || run.failed === 0, `${label}: ${String(run.failed)} records failed`);
      if (timeline) ctx.log(`${label}: state load ${timeline.loadMs} ms, pages ${timeline.readMs} ms, after the last page ${timeline.tailMs} ms; writes arrived from +${String(timeline.firstWriteMs)} to +${String(timeline.lastWriteMs)} ms`);
      return { ms, records: fetched, cpu, run, wallMs, heap, timeline };
    };

    // (a) first sync: the floor before and after Ferry (each into an ERP that starts empty), so
    // that a busy stretch of a shared machine does not land on one side only.
    const floorA1 = await floorRun('a-floor-1', 'all', erpFloor);
    check(floorA1.result.writes === n && floorA1.result.errors === 0 && erpFloor.size === n, `a-floor-1: ${floorA1.result.writes} writes, ${floorA1.result.errors} errors, ERP holds ${erpFloor.size}`);
    const ferryA = await ferryRun('a-ferry');
    const statsA = erpFerry.stats();
    check(ferryA.run.fetched === n && ferryA.run.written === n, `a-ferry: fetched ${String(ferryA.run.fetched)}, written ${String(ferryA.run.written)}, want ${n} and ${n}`);
    check(statsA.writesApplied === n && erpFerry.size === n && [...statsA.appliedById.values()].every((c) => c === 1), `a-ferry: ERP applied ${statsA.writesApplied} writes, holds ${erpFerry.size}, each id once: ${String([...statsA.appliedById.values()].every((c) => c === 1))}`);
    const hwmAfterA = readProcMemory(pid)?.hwmBytes;
    const erpFloor2 = await startErp({ token: ERP_TOKEN });
    const floorA2 = await floorRun('a-floor-2', 'all', erpFloor2);
    check(floorA2.result.writes === n && floorA2.result.errors === 0 && erpFloor2.size === n, `a-floor-2: ${floorA2.result.writes} writes, ${floorA2.result.errors} errors, ERP holds ${erpFloor2.size}`);
    await erpFloor2.close();
    const floorAs = [floorA1, floorA2];
    /** The two floor runs as one: their mean duration (CPU figures of the first). */
    const floorA: FloorMeasured = { ...floorA1, ms: (floorA1.ms + floorA2.ms) / 2 };

    // (b) unchanged full re-sync, in rounds (short runs: one disturbed second moves them a lot).
    const floorBs: FloorMeasured[] = [];
    const ferryBs: FerryMeasured[] = [];
    const bErp = { applied: 0, requests: 0 };
    for (let round = 1; round <= rounds; round++) {
      erpFerry.resetCounters();
      const floorFirst = round % 2 === 1;
      if (floorFirst) floorBs.push(await floorRun(`b-floor-r${round}`, 'none', erpFloor));
      const f = await ferryRun(`b-ferry-r${round}`);
      ferryBs.push(f);
      if (!floorFirst) floorBs.push(await floorRun(`b-floor-r${round}`, 'none', erpFloor));
      const st = erpFerry.stats();
      check(f.run.fetched === n && f.run.unchanged === n && f.run.written === 0, `b-ferry-r${round}: fetched ${String(f.run.fetched)}, unchanged ${String(f.run.unchanged)}, written ${String(f.run.written)}; want ${n}, ${n}, 0`);
      check(st.writesApplied === 0 && st.requests === 0, `b-ferry-r${round}: the ERP saw ${st.requests} requests, ${st.writesApplied} writes applied; want 0`);
      bErp.applied += st.writesApplied;
      bErp.requests += st.requests;
    }

    // (c) 1% changed, in rounds: each round changes another 1% (every step-th record, shifted by one).
    const floorCs: FloorMeasured[] = [];
    const ferryCs: FerryMeasured[] = [];
    const cErpApplied: number[] = [];
    const step = Math.floor(n / changedCount);
    for (let round = 1; round <= rounds; round++) {
      const changed = new Set<string>();
      const changeStart = Date.now();
      for (let i = (round - 1) % step; i < n && changed.size < changedCount; i += step) {
        const rec = seeded[i];
        if (!rec) continue;
        crm.update(rec.id, { amount: rec.amount + round });
        changed.add(rec.id);
      }
      await warmCrm();
      erpFerry.resetCounters();
      const floorFirst = round % 2 === 1;
      const floor = async (): Promise<void> => {
        const fl = await floorRun(`c-floor-r${round}`, 'since', erpFloor, changeStart);
        floorCs.push(fl);
        check(fl.result.writes === changedCount && fl.result.errors === 0, `c-floor-r${round}: ${fl.result.writes} writes, ${fl.result.errors} errors; want ${changedCount}`);
      };
      if (floorFirst) await floor();
      const f = await ferryRun(`c-ferry-r${round}`);
      ferryCs.push(f);
      if (!floorFirst) await floor();
      const st = erpFerry.stats();
      const applied = new Set(st.appliedById.keys());
      check(f.run.fetched === n && f.run.written === changedCount && f.run.unchanged === n - changedCount, `c-ferry-r${round}: fetched ${String(f.run.fetched)}, written ${String(f.run.written)}, unchanged ${String(f.run.unchanged)}; want ${n}, ${changedCount}, ${n - changedCount}`);
      check(st.writesApplied === changedCount && applied.size === changed.size && [...changed].every((id) => applied.has(id)), `c-ferry-r${round}: the ERP applied ${st.writesApplied} writes to ${applied.size} ids; want exactly the ${changedCount} changed`);
      cErpApplied.push(applied.size === changed.size && [...changed].every((id) => applied.has(id)) ? st.writesApplied : -st.writesApplied);
    }
    const floorB = median(floorBs);
    const ferryB = median(ferryBs);
    const floorC = median(floorCs);
    const ferryC = median(ferryCs);

    // (d) memory and state.
    const usage = sampler.stop().operator;
    const memory = readProcMemory(pid);
    const stream = `KV_${syncStateBucketName({ namespace: NS, name: SCHEDULE })}`;
    const kvInfo = await r.jsm.streams.info(stream);
    const kvBytes = kvInfo.state.bytes;
    const kvMessages = kvInfo.state.messages;
    ctx.details.stateStream = { name: stream, storage: kvInfo.config.storage, replicas: kvInfo.config.num_replicas, state: kvInfo.state };
    ctx.log(`state ${stream}: ${kvMessages} messages, ${(kvBytes / 1024 / 1024).toFixed(1)} MiB; operator VmHWM ${((memory?.hwmBytes ?? 0) / 1024 / 1024).toFixed(0)} MiB`);
    const warned = warnings(op.logs);
    ctx.details.operatorLogs = { lines: op.logs.length, warnings: warned };
    ctx.details.operatorRssTimeline = usage?.timeline ?? [];

    // What bounds it: Ferry's KV code alone, on N keys, from this process (CRM and ERP idle).
    let kvPutMs: number | undefined;
    let kvSnapshotMs: number | undefined;
    let kvCpu: Record<string, CpuWindow | undefined> = {};
    let kvSnapshotCpu: Record<string, CpuWindow | undefined> = {};
    if (kvComponent) {
      await quiet('kv');
      const scratch = 'bench_sync_kv_component';
      await new Kvm(r.js).create(scratch, { history: 1 });
      const kv = new SharedKv(r.nc, scratch);
      const entries = seeded.map((c) => [`h.${keyToken(c.id)}`, contentHash({ id: c.id, amount: c.amount })] as const);
      ctx.log(`KV component: SharedKv.putMany of ${n} hashes in chunks of ${pageSize}, then SharedKv.snapshot`);
      const a = cpuSnapshot(now(), pids);
      const t0 = now();
      for (let i = 0; i < entries.length; i += pageSize) await kv.putMany(entries.slice(i, i + pageSize));
      kvPutMs = now() - t0;
      const b = cpuSnapshot(now(), pids);
      const t1 = now();
      const snap = await kv.snapshot<string>('h.>');
      kvSnapshotMs = now() - t1;
      kvCpu = cpuBetween(a, b, n);
      kvSnapshotCpu = cpuBetween(b, cpuSnapshot(now(), pids), n);
      check(snap.size === n, `KV component: snapshot read ${snap.size} keys, want ${n}`);
      ctx.log(`KV component: putMany ${(kvPutMs / 1000).toFixed(2)} s (${((n * 1000) / kvPutMs).toFixed(0)} puts/s; client ${fmtUs(kvCpu.bench)}, nats ${fmtUs(kvCpu.nats)}), snapshot ${(kvSnapshotMs / 1000).toFixed(2)} s (client ${fmtUs(kvSnapshotCpu.bench)}, nats ${fmtUs(kvSnapshotCpu.nats)})`);
      await r.jsm.streams.delete(`KV_${scratch}`);
    }

    // Figures.
    const perSecond = (m: Measured): number | undefined => (m.ms > 0 ? (m.records * 1000) / m.ms : undefined);
    const rA = ratio(perSecond(ferryA), perSecond(floorA));
    const rB = ratio(ferryB.ms, floorB.ms);
    const rC = ratio(ferryC.ms, floorC.ms);
    const R = RATIOS_GROUP;
    ctx.figure(R, 'ratio.firstSync', '(a) first sync: Ferry ÷ write floor, records/s', rA, 'ratio', verdict(rA, GOAL_FIRST_SYNC, true));
    ctx.figure(R, 'ratio.resync', '(b) unchanged full re-sync: Ferry ÷ page reads alone, duration', rB, 'ratio', verdict(rB, GOAL_RESYNC, false));
    ctx.figure(R, 'ratio.changed', `(c) ${changedCount} changed: Ferry ÷ (page reads + ${changedCount} PUTs), duration`, rC, 'ratio', verdict(rC, GOAL_CHANGED, false));
    ctx.figure(R, 'ratio.peakRss', 'operator peak RSS ÷ before the first run (VmHWM)', ratio(memory?.hwmBytes, startupMemory?.hwmBytes), 'ratio', 'no goal set');

    const cpuNotes = (m: Measured, who: 'operator' | 'floor'): string =>
      `${who} ${fmtCores(m.cpu[who])} (${fmtUs(m.cpu[who])}; main thread ${fmtCores(m.cpu[`${who}${MAIN_THREAD}`])}), servers (this process) ${fmtCores(m.cpu.bench)}, nats ${fmtCores(m.cpu.nats)}, other ${fmtCores(m.cpu.other)}`;
    const phase = (group: string, key: string, ferry: FerryMeasured, floor: FloorMeasured, floorWhat: string, all?: { readonly ferry: readonly Measured[]; readonly floor: readonly Measured[] }, floorExtra?: () => void): void => {
      const median = all === undefined ? '' : `median of ${all.ferry.length}, ${roundsNote(all.ferry)}; `;
      ctx.figure(group, `${key}.ferryMs`, 'Ferry run duration (status finishedAt − startedAt)', ferry.ms, 'ms', `${median}trigger → finished run seen in status: ${(ferry.wallMs / 1000).toFixed(2)} s`);
      ctx.figure(group, `${key}.ferryPerSecond`, 'Ferry records read per second', perSecond(ferry), 'per_second', cpuNotes(ferry, 'operator'));
      ctx.figure(group, `${key}.floorMs`, `floor duration (${floorWhat})`, floor.ms, 'ms', `${all === undefined ? '' : `median of ${all.floor.length}, ${roundsNote(all.floor)}; `}${floor.result.pages} pages`);
      ctx.figure(group, `${key}.floorPerSecond`, 'floor records read per second', perSecond(floor), 'per_second', cpuNotes(floor, 'floor'));
      floorExtra?.();
      ctx.figure(group, `${key}.operatorCpu`, 'operator CPU over the run', ferry.cpu.operator?.seconds, 'cpu_seconds', `floor process: ${floor.cpu.floor?.seconds.toFixed(1) ?? '—'} CPU-s`);
      const t = ferry.timeline;
      ctx.figure(group, `${key}.loadMs`, '  Ferry: run start → first page request (state load)', t?.loadMs, 'ms', 'watermark, every content hash and the failed index read from KV');
      ctx.figure(group, `${key}.readMs`, '  Ferry: first → last page request', t?.readMs, 'ms', 'pages read and processed, writes and hash stores overlapping');
      ctx.figure(group, `${key}.tailMs`, '  Ferry: last page request → run end', t?.tailMs, 'ms', `the last page's records, writes and hash flush, the watermark${t?.lastWriteMs === undefined ? '' : `; last write arrived at +${(t.lastWriteMs / 1000).toFixed(2)} s`}`);
      ctx.figure(group, `${key}.heapUsed`, 'operator V8 heap used right after the run', ferry.heap.usedBytes, 'bytes', `of a ${ferry.heap.totalBytes === undefined ? '—' : `${(ferry.heap.totalBytes / 1024 / 1024).toFixed(0)} MiB`} heap`);
      ctx.figure(group, `${key}.fetched`, 'fetched (status)', ferry.run.fetched, 'count', equalsGoal(ferry.run.fetched, n));
    };
    const A = `(a) first sync: ${n} records read and written`;
    phase(A, 'a', ferryA, floorA, `read + ${n} PUTs, ${concurrency.value} in flight`, undefined, () => {
      ctx.figure(A, 'a.floorRuns', '  floor after Ferry (the one before: above)', floorA2.ms, 'ms', `before: ${(floorA1.ms / 1000).toFixed(1)} s, after: ${(floorA2.ms / 1000).toFixed(1)} s; the floor duration above is their mean, its CPU figures the first run's`);
    });
    ctx.figure(A, 'a.written', 'written (status)', ferryA.run.written, 'count', equalsGoal(ferryA.run.written, n));
    ctx.figure(A, 'a.erpApplied', 'writes applied by the ERP', statsA.writesApplied, 'count', equalsGoal(statsA.writesApplied, n));
    const B = `(b) unchanged full re-sync: ${n} records read, none written`;
    phase(B, 'b', ferryB, floorB, 'page reads only', { ferry: ferryBs, floor: floorBs });
    const bWritten = ferryBs.reduce((acc, f) => acc + (f.run.written ?? 0), 0);
    const bUnchanged = Math.min(...ferryBs.map((f) => f.run.unchanged ?? 0));
    ctx.figure(B, 'b.unchanged', 'unchanged (status), least of the rounds', bUnchanged, 'count', equalsGoal(bUnchanged, n));
    ctx.figure(B, 'b.written', 'written (status), all rounds', bWritten, 'count', equalsGoal(bWritten, 0));
    ctx.figure(B, 'b.erpApplied', 'writes applied by the ERP, all rounds', bErp.applied, 'count', equalsGoal(bErp.applied, 0));
    ctx.figure(B, 'b.erpRequests', 'requests the ERP received, all rounds', bErp.requests, 'count', equalsGoal(bErp.requests, 0));
    const C = `(c) ${changedCount} of ${n} changed: all read, the changed written`;
    phase(C, 'c', ferryC, floorC, `page reads + ${changedCount} PUTs`, { ferry: ferryCs, floor: floorCs });
    const every = (values: readonly number[], want: number): { value: number | undefined; note: string } => ({
      value: values.every((v) => v === want) ? want : values.find((v) => v !== want),
      note: `${equalsGoal(values.every((v) => v === want) ? want : Number.NaN, want)} (rounds: ${values.join(', ')})`,
    });
    const cw = every(ferryCs.map((f) => f.run.written ?? -1), changedCount);
    const cu = every(ferryCs.map((f) => f.run.unchanged ?? -1), n - changedCount);
    const ca = every(cErpApplied, changedCount);
    ctx.figure(C, 'c.written', 'written (status), every round', cw.value, 'count', cw.note);
    ctx.figure(C, 'c.unchanged', 'unchanged (status), every round', cu.value, 'count', cu.note);
    ctx.figure(C, 'c.erpApplied', 'writes applied by the ERP, exactly the changed ids, every round', ca.value, 'count', `${ca.note}; negative: other ids were written`);
    const D = '(d) operator memory and state bucket';
    ctx.figure(D, 'd.hwmBytes', 'operator peak RSS (VmHWM, whole life)', memory?.hwmBytes, 'bytes', 'no goal set');
    ctx.figure(D, 'd.peakSampledRssBytes', 'operator peak sampled VmRSS during the runs', usage?.peakSampledRssBytes, 'bytes', `${String(usage?.samples)} samples, 250 ms apart`);
    ctx.figure(D, 'd.startupHwmBytes', 'operator VmHWM before the first run', startupMemory?.hwmBytes, 'bytes', `VmRSS then ${((startupMemory?.rssBytes ?? 0) / 1024 / 1024).toFixed(0)} MiB`);
    ctx.figure(D, 'd.hwmAfterA', 'operator VmHWM after (a)', hwmAfterA, 'bytes');
    ctx.figure(D, 'd.kvBytes', `state stream ${stream}: bytes`, kvBytes, 'bytes', `${kvInfo.config.storage} storage, ${kvInfo.config.num_replicas} replica(s); no goal set`);
    ctx.figure(D, 'd.kvMessages', 'state stream: messages (one per key)', kvMessages, 'count', `${n} hashes + the watermark`);
    ctx.figure(D, 'd.kvBytesPerKey', 'state stream: bytes per key', kvMessages > 0 ? kvBytes / kvMessages : undefined, 'count');
    ctx.figure(D, 'd.kvBytesPer100k', 'state stream: bytes per 100,000 keys', kvMessages > 0 ? (kvBytes / kvMessages) * 100_000 : undefined, 'bytes');
    if (kvComponent) {
      const K = `what bounds it: Ferry's KV code alone (SharedKv, this process), ${n} keys`;
      ctx.figure(K, 'kv.putMs', `SharedKv.putMany of ${n} hashes, chunks of ${pageSize}`, kvPutMs, 'ms', `client CPU ${fmtUs(kvCpu.bench).replace('record', 'key')} (${fmtCores(kvCpu.bench)}), nats ${fmtUs(kvCpu.nats).replace('record', 'key')}`);
      ctx.figure(K, 'kv.putPerSecond', '  puts per second', kvPutMs === undefined ? undefined : (n * 1000) / kvPutMs, 'per_second');
      ctx.figure(K, 'kv.snapshotMs', `SharedKv.snapshot of ${n} hashes`, kvSnapshotMs, 'ms', `what a run reads before its first page; client CPU ${fmtUs(kvSnapshotCpu.bench).replace('record', 'key')}, nats ${fmtUs(kvSnapshotCpu.nats).replace('record', 'key')}`);
      ctx.figure(K, 'kv.aShare', '(a) Ferry − floor duration ÷ the KV puts alone', ratio(ferryA.ms - floorA.ms, kvPutMs), 'ratio', 'how many times the gap is the time of the hash stores measured alone');
      ctx.figure(K, 'kv.bShare', '(b) Ferry − floor duration ÷ the snapshot alone', ratio(ferryB.ms - floorB.ms, kvSnapshotMs), 'ratio', 'how many times the gap is the time of the state load measured alone');
    }
    ctx.figure('machine', 'machine.cores', 'CPU cores (operator, floor, CRM+ERP, nats-server, kube-apiserver, etcd share them)', machineFacts().cores, 'count');

    ctx.details.runs = {
      a: { ferry: ferryA, floor: floorAs },
      b: { ferry: ferryBs, floor: floorBs },
      c: { ferry: ferryCs, floor: floorCs },
    };
    ctx.notes.push(
      `SyncSchedule: syncSpec (test/support/sync-harness.ts) with Cursor pagination, limit ${pageSize}, incremental on /updatedAt (lookback ${lookback} > the ${(n / 3600).toFixed(1)} h the records span, safetyLag 0s: every run after the first re-reads all ${n}), mapping transform, PUT /records/{{/id}}, bearer auth on both sides, timeouts 30 s, no rate limits; target.lookup is present but unused (reconcile None, mode Upsert)`,
      `floors: a forked Node process, undici Pools of ${FERRY_CONNECTIONS_PER_ORIGIN} connections (pipelining 1) to the same CRM endpoint and an ERP of their own, ${concurrency.value} PUTs in flight per page as a run does (src/sync/sync-run.ts WRITE_CONCURRENCY), mapped body, Idempotency-Key, the response body read; 3 untimed warm-up page reads; timed from the first request to the last answer`,
      'Ferry durations are the run\'s own (status startedAt → finishedAt: KV state load, reads, writes, hash stores); the trigger (kubectl annotate, scheduler wake-up) and the status round trip are not in them',
      'the CRM and both ERPs are served by this benchmark process (one event loop), for Ferry and for the floors alike; CPU windows span each whole run',
    );
    if (busyStarts.length > 0) ctx.notes.push(`runs started on a busy machine (no second under ${QUIET_CORES} cores within ${quietWaitMs / 1000} s; cores in use): ${busyStarts.join(', ')}`);
    if (Object.keys(warned).length > 0) ctx.notes.push(`operator warnings/errors: ${JSON.stringify(warned)}`);
    if (problems.length > 0) ctx.notes.push(`checks failed (the figures above may not measure what they say): ${problems.join('; ')}`);
    return problems.length === 0 ? 'complete' : 'incomplete';
  } finally {
    await operator?.stop().catch(() => undefined);
    await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
    await r.stop().catch(() => undefined);
  }
}

const floorConfig = process.env[FLOOR_ENV];
if (floorConfig !== undefined && floorConfig !== '') {
  await floorChild(JSON.parse(floorConfig) as FloorConfig);
} else {
  await runBenchmark({ name: NAME, title: 'SyncSchedule runs over 100k records (first sync, unchanged re-sync, 1% changed), against raw page reads and PUTs in the same run' }, bench);
}
