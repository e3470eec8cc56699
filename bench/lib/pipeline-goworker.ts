/**
 * The pipeline benchmark's Go peer (issue 11 goal 2): test/env/go/goworker, the JetStream → HTTP
 * worker a user would write in Go instead of an Integration, built and cached by
 * test/env/go-tools.ts. This starts it as a child process and speaks its stdout protocol (a
 * `{"event":"ready"}` line once it consumes, a `{"event":"done",…}` line of stats after
 * warm-up + count messages; it exits when its stdin closes), behind the same {@link FloorRun}
 * shape as the Node floors, so a run drives either the same way.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { FloorResult, FloorRun } from './pipeline-floor-process.ts';

export interface GoWorkerConfig {
  /** The built binary (`ensureGoTool('goworker')`). */
  readonly binary: string;
  readonly natsUrl: string;
  readonly stream: string;
  readonly consumer: string;
  /** The full target URL. */
  readonly url: string;
  /** The events' JSON Schema, compiled once by the worker. */
  readonly schema: unknown;
  readonly concurrency: number;
  readonly connections: number;
  readonly warmup: number;
  readonly count: number;
  readonly timeoutMs: number;
  /** Put before each event's Nats-Msg-Id in its Idempotency-Key (Ferry scopes keys as `<namespace>/<name>/`). */
  readonly keyScope: string;
  /** Writes a Go CPU profile (pprof) of the measured messages here. */
  readonly cpuProfile?: string;
  /** GOMAXPROCS for the worker alone; Go's default (every core) when undefined. */
  readonly maxProcs?: number;
}

interface DoneLine {
  readonly event: 'done';
  readonly processed: number;
  readonly delivered: number;
  readonly errors: number;
  readonly invalid: number;
  readonly spanMs: number;
}

export function goWorkerArgs(c: GoWorkerConfig): string[] {
  return [
    `-nats=${c.natsUrl}`,
    `-stream=${c.stream}`,
    `-consumer=${c.consumer}`,
    `-url=${c.url}`,
    `-schema=${JSON.stringify(c.schema)}`,
    `-concurrency=${c.concurrency}`,
    `-connections=${c.connections}`,
    `-warmup=${c.warmup}`,
    `-count=${c.count}`,
    `-timeout=${c.timeoutMs}ms`,
    `-key-scope=${c.keyScope}`,
    ...(c.cpuProfile === undefined ? [] : [`-cpuprofile=${c.cpuProfile}`]),
  ];
}

/**
 * Starts the worker. `done` carries its stats as a FloorResult (the span is the worker's own,
 * first measured message received → last one final, so `firstMs` is 0); invalid events count
 * as errors. A worker that exits before its stats rejects `done` with its stderr's tail.
 */
export function startGoWorker(config: GoWorkerConfig): FloorRun {
  const env = config.maxProcs === undefined ? process.env : { ...process.env, GOMAXPROCS: String(config.maxProcs) };
  const child = spawn(config.binary, goWorkerArgs(config), { stdio: ['pipe', 'pipe', 'pipe'], env });
  if (child.pid === undefined) throw new Error(`cannot start ${config.binary}`);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  const done = new Promise<FloorResult>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = JSON.parse(line) as { event: 'ready' } | DoneLine;
      if (m.event === 'ready') resolveReady();
      else resolve({ processed: m.processed, firstMs: 0, lastMs: m.spanMs, errors: m.errors + m.invalid });
    });
    child.once('error', reject);
    void exited.then((code) => {
      reject(new Error(`the Go worker exited (code ${String(code)}) without a result: ${stderr.trim()}`));
    });
  });
  return {
    pid: child.pid,
    ready: Promise.race([ready, done.then(() => undefined)]),
    done,
    async release() {
      child.stdin.end();
      const code = await exited;
      if (code !== 0) throw new Error(`the Go worker exited with code ${String(code)}: ${stderr.trim()}`);
    },
  };
}
