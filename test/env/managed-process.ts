/**
 * A server process that never outlives the process that started it.
 *
 * Three layers, because each one alone has a gap:
 * 1. `setpriv --pdeathsig SIGKILL` (util-linux): the kernel kills the child when its parent dies,
 *    even when the parent is SIGKILLed and runs no handler at all.
 * 2. `exit`, SIGINT, SIGTERM and uncaught-error handlers kill every live child synchronously.
 * 3. When `FERRY_PID_DIR` is set (the test runner sets it) each child's pid is recorded there, and
 *    the runner kills whatever is still listed after the tests ended.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const live = new Set<ChildProcess>();
let handlersInstalled = false;

function killAllNow(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllNow();
      // Someone else listens (env:up, the demo): let them finish and exit. Otherwise die of the
      // signal as the default disposition would have.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
  process.on('uncaughtExceptionMonitor', killAllNow);
}

const pdeathsig = (() => {
  const probe = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
  return probe.status === 0 && probe.stdout.includes('--pdeathsig');
})();

export interface ManagedProcessOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** File that receives the process's stdout and stderr. */
  readonly logFile: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory (default: the caller's). */
  readonly cwd?: string;
  /** Called with every line the process writes to stdout (e.g. JSON log lines to parse). */
  readonly onStdoutLine?: (line: string) => void;
}

export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private exitPromise: Promise<number | null> | undefined;
  private readonly options: ManagedProcessOptions;

  constructor(options: ManagedProcessOptions) {
    this.options = options;
    this.name = options.name;
    this.logFile = options.logFile;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the process; readiness is the caller's to check. */
  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    installHandlers();
    const out = createWriteStream(this.logFile, { flags: 'a' });
    const [command, args] = pdeathsig
      ? ['setpriv', ['--pdeathsig', 'SIGKILL', '--', this.options.command, ...this.options.args]]
      : [this.options.command, [...this.options.args]];
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: this.options.env ?? process.env, ...(this.options.cwd === undefined ? {} : { cwd: this.options.cwd }) });
    child.stdout.pipe(out, { end: false });
    const onLine = this.options.onStdoutLine;
    if (onLine) {
      createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', onLine);
    }
    child.stderr.pipe(out, { end: false });
    this.child = child;
    live.add(child);
    const pidFile = recordPid(this.name, child.pid);
    this.exitPromise = new Promise((resolve) => {
      child.once('error', (err) => {
        out.write(`\n[ferry env] could not start ${this.options.command}: ${err.message}\n`);
      });
      child.once('close', (code) => {
        live.delete(child);
        if (pidFile) rmSync(pidFile, { force: true });
        out.end();
        resolve(code);
      });
    });
  }

  /** Resolves when the process has exited, with its exit code (null when killed by a signal). */
  async exited(): Promise<number | null> {
    return await (this.exitPromise ?? Promise.resolve(null));
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) {
      await this.exited();
      return;
    }
    child.kill('SIGTERM');
    const done = this.exited();
    // An unref'd timer: once the child has exited, the grace period must not keep the test
    // process alive (a 20 s grace kept every file that stopped an operator open 20 s longer).
    const timedOut = await Promise.race([done.then(() => false), sleep(graceMs, undefined, { ref: false }).then(() => true)]);
    if (timedOut) child.kill('SIGKILL');
    await done;
  }

  /** SIGKILL, for fault tests that need an abrupt death. */
  async kill(): Promise<void> {
    if (this.child && this.running) this.child.kill('SIGKILL');
    await this.exited();
  }

  /** The last lines of the log, for error messages. */
  tail(lines = 30): string {
    if (!existsSync(this.logFile)) return '';
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  }
}

function recordPid(name: string, pid: number | undefined): string | undefined {
  const dir = process.env.FERRY_PID_DIR;
  if (!dir || pid === undefined) return undefined;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${pid}`);
  writeFileSync(file, `${name}\n`);
  return file;
}
