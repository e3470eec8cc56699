/**
 * Memory and CPU of other processes, read from Linux's /proc.
 *
 * - `VmRSS` is the resident set now; `VmHWM` ("high water mark") is the kernel's own peak of
 *   VmRSS over the process's whole life, so a sampler cannot miss a short spike in it.
 * - CPU time is `utime + stime` from /proc/<pid>/stat, in clock ticks (`getconf CLK_TCK`).
 *
 * Every reader returns undefined for a process that is gone (or on a system without /proc)
 * instead of throwing: a benchmark reports what it could measure.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { now } from './timing.ts';

export interface ProcMemory {
  readonly rssBytes: number;
  readonly hwmBytes: number;
}

const clockTicks = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(out.stdout.trim());
  return out.status === 0 && Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function statusKiB(text: string, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
}

export function readProcMemory(pid: number): ProcMemory | undefined {
  const text = readText(`/proc/${pid}/status`);
  if (text === undefined) return undefined;
  const rssBytes = statusKiB(text, 'VmRSS');
  const hwmBytes = statusKiB(text, 'VmHWM');
  return rssBytes === undefined || hwmBytes === undefined ? undefined : { rssBytes, hwmBytes };
}

/** The path of the process's executable, to check a pid is what we think (not a wrapper). */
export function readProcExe(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds the process has used so far. */
export function readCpuSeconds(pid: number): number | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name (field 2) is in parentheses and may contain spaces: split after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / clockTicks : undefined;
}

export interface RssPoint {
  /** Milliseconds since the sampler started. */
  readonly t: number;
  readonly rssBytes: number;
}

export interface ProcessUsage {
  readonly pid: number;
  readonly samples: number;
  /** Largest VmRSS seen by sampling. */
  readonly peakSampledRssBytes: number | undefined;
  /** The kernel's VmHWM at the last successful read: the true peak over the process's life. */
  readonly hwmBytes: number | undefined;
  readonly lastRssBytes: number | undefined;
  /** CPU seconds used between start() and stop() (or the last read while it ran). */
  readonly cpuSeconds: number | undefined;
  readonly wallSeconds: number;
  readonly timeline: readonly RssPoint[];
}

interface Track {
  readonly pid: number;
  samples: number;
  peak: number | undefined;
  hwm: number | undefined;
  last: number | undefined;
  cpuAtStart: number | undefined;
  cpuLast: number | undefined;
  readonly timeline: RssPoint[];
}

/**
 * Samples VmRSS of a set of processes every `intervalMs` from start() until stop(), and their
 * CPU time over the same span. Sampling runs on an unref'ed timer and never throws.
 */
export class ProcessSampler {
  private readonly tracks = new Map<string, Track>();
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private stoppedAt: number | undefined;

  constructor(processes: Readonly<Record<string, number | undefined>>, intervalMs = 500) {
    this.intervalMs = intervalMs;
    for (const [name, pid] of Object.entries(processes)) {
      if (pid !== undefined) {
        this.tracks.set(name, { pid, samples: 0, peak: undefined, hwm: undefined, last: undefined, cpuAtStart: undefined, cpuLast: undefined, timeline: [] });
      }
    }
  }

  start(): this {
    this.startedAt = now();
    for (const track of this.tracks.values()) {
      track.cpuAtStart = readCpuSeconds(track.pid);
    }
    this.sample();
    this.timer = setInterval(() => {
      this.sample();
    }, this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Takes a last sample, stops sampling and returns the usage per process name. */
  stop(): Record<string, ProcessUsage> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.stoppedAt === undefined) {
      this.sample();
      this.stoppedAt = now();
    }
    return this.usage();
  }

  /** Usage so far, without stopping. */
  usage(): Record<string, ProcessUsage> {
    const end = this.stoppedAt ?? now();
    const out: Record<string, ProcessUsage> = {};
    for (const [name, t] of this.tracks) {
      out[name] = {
        pid: t.pid,
        samples: t.samples,
        peakSampledRssBytes: t.peak,
        hwmBytes: t.hwm,
        lastRssBytes: t.last,
        cpuSeconds: t.cpuAtStart === undefined || t.cpuLast === undefined ? undefined : t.cpuLast - t.cpuAtStart,
        wallSeconds: (end - this.startedAt) / 1000,
        timeline: t.timeline,
      };
    }
    return out;
  }

  private sample(): void {
    const t = Math.round(now() - this.startedAt);
    for (const track of this.tracks.values()) {
      const mem = readProcMemory(track.pid);
      const cpu = readCpuSeconds(track.pid);
      if (cpu !== undefined) track.cpuLast = cpu;
      if (mem === undefined) continue;
      track.samples++;
      track.last = mem.rssBytes;
      track.hwm = mem.hwmBytes;
      track.peak = Math.max(track.peak ?? 0, mem.rssBytes);
      track.timeline.push({ t, rssBytes: mem.rssBytes });
    }
  }
}
