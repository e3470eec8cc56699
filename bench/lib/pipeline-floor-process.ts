/**
 * The raw limits of the Integration pipeline benchmark, each a bare loop in its own Node process
 * (same Node as the operator), so that neither the bench's event loop nor anything Ferry loads
 * is in its way:
 *
 * - `io` — the I/O floor: the same JetStream consume as Ferry's reader (@nats-io/jetstream
 *   `consume()` with the same `max_messages`, heartbeat and expiry, on a consumer configured as
 *   Ferry's controller configures one), at most `concurrency` messages in flight (the pipeline's
 *   bound), each POSTed as it came (its payload as the body, its `Nats-Msg-Id` as the
 *   idempotency key) through an undici `Pool` with Ferry's connection count and pipelining 1
 *   (`dispatch` with a bare handler, undici's cheapest path), the response body read, then `ack()`. No decode, validation, transform, policy, metrics,
 *   stats or logging.
 * - `post` — raw undici POSTs of a pre-built body (the mapping's output) to the sink with
 *   `concurrency` in flight over the same pool: the HTTP side alone.
 * - `consume` — the same consume, each message acked as it arrives: the JetStream side alone.
 *
 * Each processes `warmup` messages (or requests) first, then `count` measured ones, and ends by
 * itself. Usage (parent): `const floor = startFloor(config); await floor.ready; const result =
 * await floor.done;`. The child side runs when this file is the entry point.
 */
import { fork } from 'node:child_process';
import { jetstream, type JsMsg } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Pool } from 'undici';
import { benchEvent, eventKey, ferryLikeConsumeOptions, mappedBody, monoMs } from './pipeline-common.ts';

export interface FloorConfig {
  readonly mode: 'io' | 'post' | 'consume';
  readonly concurrency: number;
  /** Messages (or requests) processed before the measured ones. */
  readonly warmup: number;
  readonly count: number;
  /** io/consume: where to read. */
  readonly natsUrl?: string;
  readonly stream?: string;
  readonly consumer?: string;
  /** io/post: the sink's origin and the request path. */
  readonly origin?: string;
  readonly path?: string;
  readonly connections?: number;
  /** post: key prefixes of the warm-up and the measured requests. */
  readonly warmupPrefix?: string;
  readonly prefix?: string;
}

export interface FloorResult {
  /** Messages or requests completed (acked, or answered), warm-up included. */
  readonly processed: number;
  /** Monotonic ms (pipeline-common.ts) when the first measured item started and the last ended. */
  readonly firstMs: number;
  readonly lastMs: number;
  /** Non-2xx answers and failed requests (nak'ed in io mode). */
  readonly errors: number;
}

export interface FloorRun {
  readonly pid: number;
  /** Resolves once the loop is set up (consuming, or about to send). */
  readonly ready: Promise<void>;
  /** Resolves with the result; the process then waits for `release()` (so its CPU time stays readable in /proc). */
  readonly done: Promise<FloorResult>;
  /** Lets the process exit; resolves when it has. */
  release(): Promise<void>;
}

/** Forks the loop; `execArgv` e.g. `--cpu-prof` flags. */
export function startFloor(config: FloorConfig, execArgv: readonly string[] = []): FloorRun {
  const child = fork(import.meta.filename, [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, FLOOR_CONFIG: JSON.stringify(config) },
    execArgv: [...process.execArgv, ...execArgv],
  });
  if (child.pid === undefined) throw new Error('the floor process has no pid');
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const done = new Promise<FloorResult>((resolve, reject) => {
    child.on('message', (raw) => {
      const m = raw as { type: 'ready' } | { type: 'done'; result: FloorResult };
      if (m.type === 'ready') resolveReady();
      else resolve(m.result);
    });
    child.once('error', reject);
    void exited.then((code) => {
      reject(new Error(`the ${config.mode} floor process exited (code ${String(code)}) without a result`));
    });
  });
  // A process that fails before it is ready must not leave `ready` pending forever.
  const readyOrFailed = Promise.race([ready, done.then(() => undefined)]);
  return {
    pid: child.pid,
    ready: readyOrFailed,
    done,
    async release() {
      if (child.exitCode === null && child.signalCode === null) child.send({ type: 'exit' });
      const code = await exited;
      if (code !== 0) throw new Error(`the ${config.mode} floor process exited with code ${String(code)}`);
    },
  };
}

/** A counting semaphore: at most `size` holders. The same bound the pipeline's Slots enforce. */
class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`floor config: ${name} is missing`);
  return value;
}

/**
 * POSTs through `pool.dispatch` with a bare handler and resolves with the status once the (small)
 * body has arrived. The floor uses the cheapest undici path there is, the one Ferry's deliverer
 * uses too (src/delivery/attempt-handler.ts), so Ferry is never compared with a slower floor.
 */
function postStatus(pool: Pool, path: string, headers: Record<string, string>, body: string | Uint8Array): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let status = 0;
    pool.dispatch(
      { path, method: 'POST', headers, body },
      {
        // undici treats a handler without onRequestStart as one of its legacy shape.
        onRequestStart() {
          // nothing to keep: a floor attempt is never aborted
        },
        onResponseStart(_controller, statusCode) {
          status = statusCode;
        },
        onResponseData() {
          // the body is read and dropped
        },
        onResponseEnd() {
          resolve(status);
        },
        onResponseError(_controller, error) {
          reject(error);
        },
      },
    );
  });
}

function newPool(config: FloorConfig): Pool {
  return new Pool(required(config.origin, 'origin'), {
    connections: required(config.connections, 'connections'),
    pipelining: 1,
    keepAliveTimeout: 4_000,
    allowH2: false,
  });
}

/** Reads `warmup + count` messages through `handle`; closes the connection once `settled` resolves (the last acks sent). */
async function consumeLoop(config: FloorConfig, handle: (m: JsMsg, index: number) => Promise<void> | void, settled: () => Promise<void> = () => Promise.resolve()): Promise<void> {
  const nc = await connect({ servers: required(config.natsUrl, 'natsUrl').split(',') });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(required(config.stream, 'stream'), required(config.consumer, 'consumer'));
  const messages = await consumer.consume(ferryLikeConsumeOptions(config.concurrency));
  process.send?.({ type: 'ready' });
  const total = config.warmup + config.count;
  let index = 0;
  for await (const m of messages) {
    const p = handle(m, index++);
    if (p) await p;
    if (index >= total) break;
  }
  await messages.close();
  await settled();
  await nc.flush();
  await nc.close();
}

async function io(config: FloorConfig): Promise<FloorResult> {
  const pool = newPool(config);
  const path = required(config.path, 'path');
  const slots = new Slots(config.concurrency);
  const total = config.warmup + config.count;
  let processed = 0;
  let errors = 0;
  let firstMs = Number.NaN;
  let lastMs = Number.NaN;
  let allDone: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  const post = async (m: JsMsg, index: number): Promise<void> => {
    if (index === config.warmup) firstMs = monoMs();
    try {
      const status = await postStatus(pool, path, { 'content-type': 'application/json', 'idempotency-key': m.headers?.get('Nats-Msg-Id') ?? '', 'user-agent': 'ferry-bench-floor' }, m.data);
      if (status >= 200 && status < 300) m.ack();
      else {
        errors++;
        m.nak(1_000);
      }
    } catch {
      errors++;
      m.nak(1_000);
    }
    processed++;
    if (processed === total) {
      lastMs = monoMs();
      allDone();
    }
  };
  await consumeLoop(
    config,
    async (m, index) => {
      await slots.acquire();
      void post(m, index).finally(() => {
        slots.release();
      });
    },
    () => finished,
  );
  await pool.close();
  return { processed, firstMs, lastMs, errors };
}

async function consumeOnly(config: FloorConfig): Promise<FloorResult> {
  let firstMs = Number.NaN;
  let lastMs = Number.NaN;
  let processed = 0;
  await consumeLoop(config, (m, index) => {
    if (index === config.warmup) firstMs = monoMs();
    m.ack();
    processed++;
    lastMs = monoMs();
  });
  return { processed, firstMs, lastMs, errors: 0 };
}

async function postOnly(config: FloorConfig): Promise<FloorResult> {
  const pool = newPool(config);
  const path = required(config.path, 'path');
  const total = config.warmup + config.count;
  // Built before the clock starts: this floor measures HTTP, not JSON.stringify.
  const requests = Array.from({ length: total }, (_, i) => {
    const key = i < config.warmup ? eventKey(required(config.warmupPrefix, 'warmupPrefix'), i) : eventKey(required(config.prefix, 'prefix'), i - config.warmup);
    return { key, body: mappedBody(benchEvent(key, i)) };
  });
  process.send?.({ type: 'ready' });
  let next = 0;
  let processed = 0;
  let errors = 0;
  let firstMs = Number.NaN;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const index = next++;
      const r = requests[index];
      if (!r) break;
      if (index === config.warmup) firstMs = monoMs();
      try {
        const status = await postStatus(pool, path, { 'content-type': 'application/json', 'idempotency-key': r.key, 'user-agent': 'ferry-bench-floor' }, r.body);
        if (status < 200 || status >= 300) errors++;
      } catch {
        errors++;
      }
      processed++;
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, worker));
  const lastMs = monoMs();
  await pool.close();
  return { processed, firstMs, lastMs, errors };
}

async function main(): Promise<void> {
  const config = JSON.parse(required(process.env.FLOOR_CONFIG, 'FLOOR_CONFIG')) as FloorConfig;
  const result = config.mode === 'io' ? await io(config) : config.mode === 'consume' ? await consumeOnly(config) : await postOnly(config);
  // Stay until released: the parent reads this process's CPU time from /proc after the run.
  const released = new Promise<void>((resolve) => {
    process.on('message', (m: { type?: string }) => {
      if (m.type === 'exit') resolve();
    });
  });
  process.send?.({ type: 'done', result });
  await released;
  process.exit(0);
}

if (import.meta.main) {
  process.on('disconnect', () => process.exit(1));
  await main();
}
