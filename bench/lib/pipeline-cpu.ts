/**
 * CPU time of the whole machine and of a set of processes over a window, from Linux's /proc, so
 * a run can say how busy the machine was and how much of that was someone else's: on a 2-core
 * machine shared with other work, a pipeline that looks slow may simply have been starved.
 *
 * Returns undefined for what it cannot read (a process that is gone, a system without /proc).
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: 100 on every Linux this runs on (proc(5)); /proc/stat and /proc/<pid>/stat count in it. */
const clockTicks = 100;

/**
 * User and system CPU seconds of a process so far (utime, stime of /proc/<pid>/stat, all
 * threads), or of its main thread alone (`mainThread`: /proc/<pid>/task/<pid>/stat) — the
 * difference is V8's GC helpers, the libuv pool and other threads.
 */
export function readCpuSplit(pid: number, mainThread = false): { readonly user: number; readonly system: number } | undefined {
  let text: string;
  try {
    text = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces: split after its closing parenthesis.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  return Number.isFinite(user) && Number.isFinite(system) ? { user: user / clockTicks, system: system / clockTicks } : undefined;
}

/** Seconds of CPU the whole machine has spent not idle (all cores summed), from /proc/stat. */
export function readMachineBusySeconds(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  const line = text.split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user).
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 8 || f.some((v) => !Number.isFinite(v))) return undefined;
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / clockTicks;
}

/** Read and write system calls the process has made so far (`syscr`, `syscw` of /proc/<pid>/io). */
export function readSyscalls(pid: number): { readonly reads: number; readonly writes: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/io`, 'utf8');
  } catch {
    return undefined;
  }
  const reads = Number(/^syscr:\s+(\d+)$/m.exec(text)?.[1]);
  const writes = Number(/^syscw:\s+(\d+)$/m.exec(text)?.[1]);
  return Number.isFinite(reads) && Number.isFinite(writes) ? { reads, writes } : undefined;
}

export interface CpuSnapshot {
  readonly at: number;
  readonly machine: number | undefined;
  readonly processes: Readonly<Record<string, { readonly user: number; readonly system: number } | undefined>>;
  readonly syscalls: Readonly<Record<string, { readonly reads: number; readonly writes: number } | undefined>>;
}

export interface CpuWindow {
  readonly seconds: number;
  /** Mean cores used over the window. */
  readonly cores: number;
  /** CPU µs per item processed in the window, and the part of it spent in the kernel. */
  readonly usPerEvent: number;
  readonly systemUsPerEvent?: number;
  /** read/write system calls per item (sockets included), when /proc/<pid>/io is readable. */
  readonly readsPerEvent?: number;
  readonly writesPerEvent?: number;
}

/** Suffix of the per-process entries that hold the main thread alone (not summed into `other`). */
export const MAIN_THREAD = '.mainThread';

/** CPU and syscalls of each named process now; names listed in `mainThreads` also get `<name>.mainThread`. */
export function cpuSnapshot(atMs: number, pids: Readonly<Record<string, number | undefined>>, mainThreads: readonly string[] = []): CpuSnapshot {
  const entries = Object.entries(pids);
  const threads = entries.filter(([name, pid]) => pid !== undefined && mainThreads.includes(name)).map(([name, pid]) => [`${name}${MAIN_THREAD}`, pid === undefined ? undefined : readCpuSplit(pid, true)] as const);
  return {
    at: atMs,
    machine: readMachineBusySeconds(),
    processes: Object.fromEntries([...entries.map(([name, pid]) => [name, pid === undefined ? undefined : readCpuSplit(pid)] as const), ...threads]),
    syscalls: Object.fromEntries(entries.map(([name, pid]) => [name, pid === undefined ? undefined : readSyscalls(pid)])),
  };
}

/**
 * Per process (and `machine`, and `other` = machine minus every listed process) between two
 * snapshots, with `items` processed in between.
 */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot, items: number): Record<string, CpuWindow | undefined> {
  const wallS = (b.at - a.at) / 1000;
  const window = (before: number | undefined, after: number | undefined): CpuWindow | undefined =>
    before === undefined || after === undefined || wallS <= 0 || items <= 0
      ? undefined
      : { seconds: after - before, cores: (after - before) / wallS, usPerEvent: ((after - before) * 1e6) / items };
  const out: Record<string, CpuWindow | undefined> = {};
  let ours = 0;
  let complete = true;
  for (const [name, before] of Object.entries(a.processes)) {
    const after = b.processes[name];
    const cpu = window(before && before.user + before.system, after && after.user + after.system);
    const w = cpu && before && after ? { ...cpu, systemUsPerEvent: ((after.system - before.system) * 1e6) / items } : cpu;
    const sa = a.syscalls[name];
    const sb = b.syscalls[name];
    out[name] = w && sa && sb ? { ...w, readsPerEvent: (sb.reads - sa.reads) / items, writesPerEvent: (sb.writes - sa.writes) / items } : w;
    if (name.endsWith(MAIN_THREAD)) continue;
    if (w) ours += w.seconds;
    else complete = false;
  }
  const machine = window(a.machine, b.machine);
  out.machine = machine;
  out.other = machine && complete ? { seconds: machine.seconds - ours, cores: (machine.seconds - ours) / wallS, usPerEvent: ((machine.seconds - ours) * 1e6) / items } : undefined;
  return out;
}

export interface QuietResult {
  readonly waitedMs: number;
  /** Machine CPU use (cores) over the last second sampled. */
  readonly busyCores: number | undefined;
  readonly quiet: boolean;
}

/**
 * Waits (up to `maxWaitMs`) until the whole machine used less than `thresholdCores` over one
 * second, so that a run does not start while other work (a test suite, a compiler) holds the
 * cores. The benchmark's own idle processes count too: keep the threshold above their idle use.
 */
export async function waitForQuietMachine(maxWaitMs: number, thresholdCores: number): Promise<QuietResult> {
  const started = Date.now();
  for (;;) {
    const a = readMachineBusySeconds();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const b = readMachineBusySeconds();
    const busyCores = a === undefined || b === undefined ? undefined : b - a;
    const waitedMs = Date.now() - started;
    if (busyCores === undefined || busyCores < thresholdCores) return { waitedMs, busyCores, quiet: true };
    if (waitedMs >= maxWaitMs) return { waitedMs, busyCores, quiet: false };
  }
}
