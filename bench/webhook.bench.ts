/**
 * webhook: requests/s and p99 latency of signed 1 KB webhooks up to the PubAck through Ferry's
 * ingress, against a floor measured in the same run, reported as ratios.
 *
 * One local control plane (test/support/runtime-harness.ts: its EVENTS stream captures
 * `events.>`), one `ferry controller` process (log level info, `--webhook-address
 * 127.0.0.1:0`) and one Integration `bench` with `source.webhook` (Standard Webhooks, two
 * secrets) and `suspend: true`, so its pipeline does not consume: the operator's CPU goes to the
 * ingress alone.
 *
 * Floor: a bare Node HTTP server in a process of its own (this file, forked with
 * FERRY_WEBHOOK_FLOOR=1) that reads the body, publishes it with the same client library
 * (@nats-io/jetstream `publish` with `msgID` = the `webhook-id` header) to the same stream and
 * answers 202 after the PubAck. No verification, no lookup, no metrics, no logging.
 *
 * Load: this process, an undici Pool with `concurrency` connections and as many requests in
 * flight; the requests are built and signed (Standard Webhooks, HMAC-SHA256) before the clock
 * starts, each with its own id, so neither side sees a duplicate. For each concurrency the floor
 * and Ferry take turns (`FERRY_BENCH_ROUNDS` rounds, the first of each round alternating), each
 * round `FERRY_BENCH_WEBHOOK_REQUESTS` requests after a warm-up of a tenth of that. Ratio:
 * median requests/s of Ferry ÷ median of the floor (goal ≥ 0.8); p99 over all measured rounds.
 *
 * Environment: FERRY_BENCH_WEBHOOK_REQUESTS (4000), FERRY_BENCH_CONCURRENCY (16,64,256),
 * FERRY_BENCH_ROUNDS (3).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Webhook } from 'standardwebhooks';
import { Pool } from 'undici';
import { NS, putSecret, setupRuntimeEnv, type RuntimeEnv } from '../test/support/runtime-harness.ts';
import { gitCommit } from './lib/machine.ts';
import { intEnv, intListEnv } from './lib/pipeline-common.ts';
import { RATIOS_GROUP, runBenchmark, type BenchContext } from './lib/result.ts';
import { ratio, summarize } from './lib/stats.ts';
import { now } from './lib/timing.ts';

const NAME = 'webhook';
const FLOOR_ENV = 'FERRY_WEBHOOK_FLOOR';
const GOAL = 0.8;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const PREVIOUS = `whsec_${randomBytes(32).toString('base64')}`;

/** The floor's child side: publish each body with its webhook-id, answer 202 after the PubAck. */
async function floorChild(): Promise<void> {
  // Ends with the benchmark, however it ends.
  process.on('disconnect', () => process.exit(0));
  const natsUrl = process.env.NATS_URL ?? '';
  const nc = await connect({ servers: natsUrl.split(',') });
  const js = jetstream(nc);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = req.headers['webhook-id'];
      js.publish('events.bench.floor', Buffer.concat(chunks), { msgID: typeof id === 'string' ? id : undefined, timeout: 5_000 }).then(
        () => res.writeHead(202, { 'content-length': '0' }).end(),
        () => res.writeHead(503, { 'content-length': '0' }).end(),
      );
    });
  });
  server.keepAliveTimeout = 5_000;
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port });
  });
}

interface Request {
  readonly body: string;
  readonly headers: Record<string, string>;
}

/** `n` signed requests with 1 KB JSON bodies and ids unique to `prefix`. */
function signedRequests(prefix: string, n: number): Request[] {
  const wh = new Webhook(SECRET);
  return Array.from({ length: n }, (_, i) => {
    const id = `${prefix}-${i}`;
    const body = JSON.stringify({ id, amount: i, pad: 'x'.repeat(1024 - JSON.stringify({ id, amount: i, pad: '' }).length) });
    const at = new Date();
    return {
      body,
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': wh.sign(id, at, body),
      },
    };
  });
}

interface RoundResult {
  readonly perSecond: number;
  readonly latenciesMs: number[];
  readonly errors: number;
}

/** Sends every request with `concurrency` in flight; requests/s over the whole batch and each latency. */
async function drive(origin: string, path: string, requests: readonly Request[], concurrency: number): Promise<RoundResult> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const latenciesMs: number[] = [];
  let errors = 0;
  let next = 0;
  const started = now();
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < requests.length; i = next++) {
          const r = requests[i];
          if (!r) break;
          const t0 = now();
          try {
            const res = await pool.request({ path, method: 'POST', headers: r.headers, body: r.body });
            await res.body.dump();
            if (res.statusCode !== 202) errors++;
          } catch {
            errors++;
          }
          latenciesMs.push(now() - t0);
        }
      }),
    );
  } finally {
    await pool.close();
  }
  return { perSecond: (requests.length / (now() - started)) * 1000, latenciesMs, errors };
}

function median(values: readonly number[]): number | undefined {
  return summarize(values)?.p50;
}

async function bench(ctx: BenchContext): Promise<'complete' | 'incomplete'> {
  const count = intEnv('FERRY_BENCH_WEBHOOK_REQUESTS', 4_000);
  const concurrencies = intListEnv('FERRY_BENCH_CONCURRENCY', [16, 64, 256]);
  const rounds = intEnv('FERRY_BENCH_ROUNDS', 3);
  Object.assign(ctx.params, { requests: count, concurrencies: concurrencies.join(','), rounds, bodyBytes: 1024, scheme: 'StandardWebhooks', commit: gitCommit() });
  // Every accepted request is a debug line; the bench measures the ingress, not the logger.
  process.env.FERRY_LOG_LEVEL = 'info';
  let r: RuntimeEnv | undefined;
  try {
    r = await setupRuntimeEnv();
    const env = r;
    const floor = fork(import.meta.filename, [], { env: { ...process.env, [FLOOR_ENV]: '1', NATS_URL: env.env.natsUrl }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const floorPort = await new Promise<number>((resolve) => floor.once('message', (m: { port: number }) => { resolve(m.port); }));
    try {
      await putSecret(env, 'bench-hook', { current: SECRET, previous: PREVIOUS });
      const op = await env.startOperator('bench', ['--webhook-address=127.0.0.1:0']);
      const line = await op.waitForLog((l) => l.msg === 'webhook ingress listening');
      const ferryOrigin = `http://127.0.0.1:${String(line.port)}`;
      await env.ferry.create('integrations', NS, {
        kind: 'Integration',
        metadata: { name: 'bench' },
        spec: {
          source: {
            stream: 'EVENTS',
            subjects: ['events.bench.ferry'],
            webhook: { subject: 'events.bench.ferry', signature: { secretKeyRefs: [{ name: 'bench-hook', key: 'previous' }, { name: 'bench-hook', key: 'current' }] } },
          },
          target: { url: 'http://127.0.0.1:9/never' },
          suspend: true,
        },
      });
      await env.ferry.waitFor('integrations', NS, 'bench', (o) => o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false, 60_000);
      const floorOrigin = `http://127.0.0.1:${String(floorPort)}`;
      const targets = {
        floor: { origin: floorOrigin, path: '/hooks' },
        ferry: { origin: ferryOrigin, path: `/hooks/${NS}/bench` },
      } as const;
      const results: Record<string, unknown> = {};
      let complete = true;
      for (const c of concurrencies) {
        const perSecond: Record<'floor' | 'ferry', number[]> = { floor: [], ferry: [] };
        const latencies: Record<'floor' | 'ferry', number[]> = { floor: [], ferry: [] };
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? (['floor', 'ferry'] as const) : (['ferry', 'floor'] as const);
          for (const side of order) {
            const { origin, path } = targets[side];
            await drive(origin, path, signedRequests(`${side}-c${c}-r${round}-warm`, Math.ceil(count / 10)), c);
            const res = await drive(origin, path, signedRequests(`${side}-c${c}-r${round}`, count), c);
            if (res.errors > 0) {
              complete = false;
              ctx.notes.push(`${side} at concurrency ${c}, round ${round}: ${res.errors} requests not answered 202`);
            }
            perSecond[side].push(res.perSecond);
            latencies[side].push(...res.latenciesMs);
            ctx.log(`c=${c} round ${round} ${side}: ${res.perSecond.toFixed(0)} req/s`);
          }
        }
        const ferryRate = median(perSecond.ferry);
        const floorRate = median(perSecond.floor);
        const ferryP99 = summarize(latencies.ferry)?.p99;
        const floorP99 = summarize(latencies.floor)?.p99;
        ctx.figure(RATIOS_GROUP, `c${c}.ratio`, `requests/s Ferry ÷ floor, ${c} in flight (goal ≥ ${GOAL})`, ratio(ferryRate, floorRate), 'ratio');
        ctx.figure(`concurrency ${c}`, `c${c}.ferry.perSecond`, 'Ferry requests/s (median of rounds)', ferryRate, 'per_second');
        ctx.figure(`concurrency ${c}`, `c${c}.floor.perSecond`, 'floor requests/s (median of rounds)', floorRate, 'per_second');
        ctx.figure(`concurrency ${c}`, `c${c}.ferry.p99`, 'Ferry p99 latency', ferryP99, 'ms');
        ctx.figure(`concurrency ${c}`, `c${c}.floor.p99`, 'floor p99 latency', floorP99, 'ms');
        results[`c${c}`] = { perSecond, p50: { ferry: summarize(latencies.ferry)?.p50, floor: summarize(latencies.floor)?.p50 } };
      }
      ctx.details.rounds = results;
      const info = await env.jsm.streams.info('EVENTS', { subjects_filter: 'events.bench.>' });
      const expected = concurrencies.length * rounds * (count + Math.ceil(count / 10));
      ctx.details.stored = info.state.subjects;
      for (const side of ['floor', 'ferry'] as const) {
        const stored = info.state.subjects?.[`events.bench.${side}`] ?? 0;
        ctx.figure('stored', `${side}.stored`, `${side}: messages stored (expected ${expected})`, stored, 'count');
        if (stored !== expected) {
          complete = false;
          ctx.notes.push(`${side} stored ${stored} messages, expected ${expected}`);
        }
      }
      return complete ? 'complete' : 'incomplete';
    } finally {
      floor.kill();
    }
  } finally {
    await r?.stop();
  }
}

if (process.env[FLOOR_ENV] === '1') {
  await floorChild();
} else {
  await runBenchmark({ name: NAME, title: 'Webhook ingress: signed 1 KB requests to the PubAck, Ferry ÷ a bare publish server' }, bench);
}
