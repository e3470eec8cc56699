/**
 * Runs the operator the way users do: `ferry controller` as its own process, against a test
 * control plane. Its JSON log lines are parsed so tests can wait for what it says it did.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane } from '../env/control-plane.ts';
import { ManagedProcess } from '../env/managed-process.ts';

export interface LogLine {
  readonly level?: string;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface OperatorProcess {
  readonly identity: string;
  readonly process: ManagedProcess;
  readonly logs: readonly LogLine[];
  /** Port of /healthz, /readyz and /metrics. */
  readonly httpPort: number;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  metrics(): Promise<string>;
  /** SIGTERM and wait: the graceful path (drain, release the Lease). */
  stop(): Promise<void>;
  /** SIGKILL: the crash path. */
  kill(): Promise<void>;
  /**
   * Sends SIGTERM and waits up to `waitMs` for the process to exit on its own (no SIGKILL):
   * resolves with its exit code (null if a signal ended it, `undefined` if it was still
   * running at the deadline) and how long it took.
   */
  terminate(waitMs: number): Promise<{ readonly code: number | null | undefined; readonly ms: number }>;
  /** SIGSTOP: the process is frozen (no timers, no I/O) as in a long GC pause or a stalled node. */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
  /** GET /readyz: its status code and body. */
  readyz(): Promise<{ readonly status: number; readonly body: string }>;
}

export interface OperatorOptions {
  readonly env: ControlPlane;
  readonly identity: string;
  readonly args?: readonly string[];
  /** Defaults to the control plane's nats-server. */
  readonly natsUrl?: string;
  readonly envVars?: NodeJS.ProcessEnv;
  /** The entry point to run (default: src/cli/main.ts); the image test runs the compiled dist/cli/main.js. */
  readonly main?: string;
  /** Working directory of the process (default: the test's); the image test runs it from the image's /app. */
  readonly cwd?: string;
  /** Node and V8 flags before the entry point (NODE_OPTIONS refuses most V8 flags); default none. */
  readonly nodeFlags?: readonly string[];
}

const defaultMain = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export async function startOperator(options: OperatorOptions): Promise<OperatorProcess> {
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  const proc = new ManagedProcess({
    name: `ferry-operator-${options.identity}`,
    command: process.execPath,
    args: [
      ...(options.nodeFlags ?? []),
      options.main ?? defaultMain,
      'controller',
      `--kubeconfig=${options.env.kubeconfigPath}`,
      `--nats-url=${options.natsUrl ?? options.env.natsUrl}`,
      '--http-address=127.0.0.1:0',
      `--identity=${options.identity}`,
      '--lease-namespace=default',
      ...(options.args ?? []),
    ],
    logFile: join(options.env.dir, `operator-${options.identity}.log`),
    env: { ...process.env, FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'debug', ...options.envVars },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    onStdoutLine(line) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
      for (const wake of waiters) wake();
    },
  });
  proc.start();

  async function waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    let seen = 0;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (; seen < logs.length; seen++) {
        const line = logs[seen];
        if (line && predicate(line)) return line;
      }
      if (!proc.running) throw new Error(`operator ${options.identity} exited; log tail:\n${proc.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`operator ${options.identity}: no matching log line within ${timeoutMs} ms; tail:\n${proc.tail()}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
        // Also wake periodically to notice an exit or the deadline.
        void sleep(Math.min(left, 250)).then(wake);
      });
    }
  }

  const listening = await waitForLog((l) => l.msg === 'operator endpoints listening', 60_000);
  const httpPort = Number(listening.port);

  return {
    identity: options.identity,
    process: proc,
    logs,
    httpPort,
    waitForLog,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
      return await res.text();
    },
    async stop() {
      await proc.stop(20_000);
    },
    async kill() {
      await proc.kill();
    },
    async terminate(waitMs) {
      const pid = proc.pid;
      if (pid === undefined || !proc.running) return { code: await proc.exited(), ms: 0 };
      const started = Date.now();
      process.kill(pid, 'SIGTERM');
      const code = await Promise.race([proc.exited(), sleep(waitMs, undefined, { ref: false }).then(() => undefined)]);
      return { code, ms: Date.now() - started };
    },
    pause() {
      if (proc.pid !== undefined && proc.running) process.kill(proc.pid, 'SIGSTOP');
    },
    resume() {
      if (proc.pid !== undefined && proc.running) process.kill(proc.pid, 'SIGCONT');
    },
    async readyz() {
      const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      return { status: res.status, body: await res.text() };
    },
  };
}
