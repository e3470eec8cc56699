/**
 * Who had the CPU, millisecond by millisecond: a timeline sampled every few ms during a measured
 * phase, to explain a latency episode after the fact.
 *
 * Per process, from `/proc/<pid>/task/<tid>/schedstat` summed over its threads: time on a CPU and
 * time **runnable but waiting for one** (run-queue wait), both in ns. Run-queue wait is the
 * direct measure of CPU contention: a thread that is off the CPU with no run-queue wait was not
 * asked to run (nothing arrived for it). Of the machine, from `/proc/stat`: idle and steal (time
 * the hypervisor ran something else while a vCPU wanted to run), in clock ticks.
 *
 * Linux only; a process or file that is gone reads as undefined.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { now } from './timing.ts';

interface SchedTimes {
  readonly runNs: number;
  readonly waitNs: number;
}

interface MachineTicks {
  readonly idle: number;
  readonly steal: number;
  readonly busy: number;
}

export interface TimelineSample {
  /** ms on the clock given to startCpuTimeline: the clock of the times it is compared with. */
  readonly at: number;
  readonly procs: Readonly<Record<string, SchedTimes | undefined>>;
  readonly machine: MachineTicks | undefined;
}

function readSched(path: string): SchedTimes | undefined {
  try {
    const [run, wait] = readFileSync(path, 'utf8').trim().split(' ');
    return { runNs: Number(run), waitNs: Number(wait) };
  } catch {
    return undefined;
  }
}

/** Thread names, read once per thread: sampling every 5 ms must stay cheap. */
const comms = new Map<string, string | undefined>();

function commOf(pid: number, tid: string): string | undefined {
  const key = `${pid}/${tid}`;
  if (comms.has(key)) return comms.get(key);
  let comm: string | undefined;
  try {
    comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    comm = undefined;
  }
  comms.set(key, comm);
  return comm;
}

/** Every thread of `pid`, or only those whose name (`comm`) is `only`. */
function schedOf(pid: number, only?: string): SchedTimes | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let runNs = 0;
  let waitNs = 0;
  for (const tid of tids) {
    if (only !== undefined && commOf(pid, tid) !== only) continue;
    // undefined: the thread ended between readdir and read
    const t = readSched(`/proc/${pid}/task/${tid}/schedstat`);
    runNs += t?.runNs ?? 0;
    waitNs += t?.waitNs ?? 0;
  }
  return { runNs, waitNs };
}

function machineTicks(): MachineTicks | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
    return { idle: idle + iowait, steal, busy: user + nice + system + irq + softirq };
  } catch {
    return undefined;
  }
}

export interface CpuTimeline {
  stop(): readonly TimelineSample[];
}

/** Threads of one process with one name, e.g. Node's `V8Worker`s (GC and compiler helpers). */
export interface NamedThreads {
  readonly pid: number | undefined;
  readonly comm: string;
}

/**
 * Samples `pids` (by name, every thread), `mainThreads` (by name, the process's first thread
 * alone: a Node process's event loop), `named` (threads of a process by their name) and the
 * machine every `everyMs` until `stop()`.
 */
export function startCpuTimeline(
  pids: Readonly<Record<string, number | undefined>>,
  mainThreads: Readonly<Record<string, number | undefined>> = {},
  named: Readonly<Record<string, NamedThreads>> = {},
  clock: () => number = now,
  everyMs = 5,
): CpuTimeline {
  const samples: TimelineSample[] = [];
  const take = (): void => {
    const procs: Record<string, SchedTimes | undefined> = {};
    for (const [name, pid] of Object.entries(mainThreads)) procs[name] = pid === undefined ? undefined : readSched(`/proc/${pid}/schedstat`);
    for (const [name, t] of Object.entries(named)) procs[name] = t.pid === undefined ? undefined : schedOf(t.pid, t.comm);
    for (const [name, pid] of Object.entries(pids)) procs[name] = pid === undefined ? undefined : schedOf(pid);
    samples.push({ at: clock(), procs, machine: machineTicks() });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/**
 * The timeline between `from` and `to` (ms on the timeline's clock) in slices of `sliceMs`: per process its CPU
 * and its run-queue wait in ms, and the machine's steal and idle ticks. One line per slice,
 * times relative to `origin`.
 */
export function describeTimeline(samples: readonly TimelineSample[], from: number, to: number, origin: number, sliceMs = 10): string[] {
  const lines: string[] = [];
  const at = (t: number): TimelineSample | undefined => {
    let best: TimelineSample | undefined;
    for (const s of samples) if (s.at <= t) best = s;
    return best;
  };
  for (let t = from; t < to; t += sliceMs) {
    const a = at(t);
    const b = at(t + sliceMs);
    if (!a || !b || a === b) continue;
    const parts: string[] = [];
    for (const name of Object.keys(b.procs)) {
      const x = a.procs[name];
      const y = b.procs[name];
      if (!x || !y) continue;
      parts.push(`${name} ${((y.runNs - x.runNs) / 1e6).toFixed(1)}/${((y.waitNs - x.waitNs) / 1e6).toFixed(1)}`);
    }
    const m = a.machine && b.machine ? ` | machine busy ${b.machine.busy - a.machine.busy} idle ${b.machine.idle - a.machine.idle} steal ${b.machine.steal - a.machine.steal} ticks` : '';
    lines.push(`+${(a.at - origin).toFixed(0)}…+${(b.at - origin).toFixed(0)} ms: ${parts.join(', ')}${m}`);
  }
  return lines;
}
