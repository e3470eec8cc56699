/**
 * A V8 `.cpuprofile` cut to a time window, summarised by self time (per function, per module)
 * and by inclusive time (per function: samples with the function anywhere on the stack). Pure
 * apart from reading the file.
 *
 * Why a window: `node --cpu-prof` profiles the whole life of a process, and an operator's start
 * (module loading, cache sync) would otherwise dilute the part a benchmark measures. The
 * profile's `startTime` and `timeDeltas` are microseconds on CLOCK_MONOTONIC, the clock of
 * `monoMs()` in pipeline-common.ts, so a window taken in the bench process applies directly.
 *
 * Module and function names follow cpu-profile.ts (`moduleOf`).
 */
import { readFileSync } from 'node:fs';
import { moduleOf, type HotSpot } from './cpu-profile.ts';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface WindowedProfile {
  /** Sampled time inside the window (idle included), ms. */
  readonly windowMs: number;
  /** Of which not `(idle)`: the thread worked (JavaScript, natives, GC, `(program)`), ms. */
  readonly busyMs: number;
  readonly gcMs: number;
  /** V8's `(program)`: native code outside JavaScript (syscalls, libuv, the embedder). */
  readonly programMs: number;
  readonly idleMs: number;
  /** Self time, every module; percentages are of busyMs (where the CPU went while the thread worked). */
  readonly byModule: readonly HotSpot[];
  readonly byFunction: readonly HotSpot[];
  /** Inclusive time of functions in Ferry's own sources (src/), percentages as above. */
  readonly inclusiveFerry: readonly HotSpot[];
  /** Inclusive time per module entered from elsewhere (time "inside" each package). */
  readonly inclusiveModule: readonly HotSpot[];
}

function label(frame: ProfileNode['callFrame']): string {
  return `${frame.functionName || '(anonymous)'} ${moduleOf(frame.url, frame.functionName)}:${frame.lineNumber + 1}`;
}

function top(totals: Map<string, number>, baseUs: number, n: number): HotSpot[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), percent: baseUs > 0 ? Math.round((us / baseUs) * 1000) / 10 : 0 }));
}

/** Summarises the samples taken between `fromMs` and `toMs` (monotonic ms). */
export function summarizeProfileWindow(path: string, fromMs: number, toMs: number, n = 25): WindowedProfile {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const fromUs = fromMs * 1000;
  const toUs = toMs * 1000;
  const selfFn = new Map<string, number>();
  const selfModule = new Map<string, number>();
  const inclFerry = new Map<string, number>();
  const inclModule = new Map<string, number>();
  let windowUs = 0;
  let idleUs = 0;
  let gcUs = 0;
  let programUs = 0;
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) return;
    const node = byId.get(id);
    if (!node) return;
    windowUs += dt;
    const name = node.callFrame.functionName;
    if (name === '(idle)') {
      idleUs += dt;
      return;
    }
    if (name === '(program)') programUs += dt;
    if (name === '(garbage collector)') gcUs += dt;
    const module = moduleOf(node.callFrame.url, name);
    selfFn.set(label(node.callFrame), (selfFn.get(label(node.callFrame)) ?? 0) + dt);
    selfModule.set(module, (selfModule.get(module) ?? 0) + dt);
    // Inclusive: each distinct function and module on the stack once.
    const fns = new Set<string>();
    const modules = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame || frame.functionName === '(root)') continue;
      const m = moduleOf(frame.url, frame.functionName);
      modules.add(m);
      if (m.startsWith('src/')) fns.add(label(frame));
    }
    for (const f of fns) inclFerry.set(f, (inclFerry.get(f) ?? 0) + dt);
    for (const m of modules) inclModule.set(m, (inclModule.get(m) ?? 0) + dt);
  });
  const workUs = windowUs - idleUs;
  return {
    windowMs: Math.round(windowUs / 1000),
    busyMs: Math.round(workUs / 1000),
    gcMs: Math.round(gcUs / 1000),
    programMs: Math.round(programUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    byModule: top(selfModule, workUs, Number.POSITIVE_INFINITY),
    byFunction: top(selfFn, workUs, n),
    inclusiveFerry: top(inclFerry, workUs, n),
    inclusiveModule: top(inclModule, workUs, n),
  };
}

export interface ModuleDelta {
  readonly module: string;
  /** Self CPU µs per event in the first profile and in the second. */
  readonly aUs: number;
  readonly bUs: number;
  readonly deltaUs: number;
}

/**
 * Where the first process spends more CPU per event than the second, by module: self time per
 * event in each window (`events` processed in it), sorted by the difference, largest first.
 */
export function moduleDeltaPerEvent(a: WindowedProfile, aEvents: number, b: WindowedProfile, bEvents: number): ModuleDelta[] {
  const per = (p: WindowedProfile, events: number): Map<string, number> => new Map(p.byModule.map((h) => [h.name, (h.selfMs * 1000) / events]));
  const am = per(a, aEvents);
  const bm = per(b, bEvents);
  const names = new Set([...am.keys(), ...bm.keys()]);
  return [...names]
    .map((module) => {
      const aUs = am.get(module) ?? 0;
      const bUs = bm.get(module) ?? 0;
      return { module, aUs: Math.round(aUs * 10) / 10, bUs: Math.round(bUs * 10) / 10, deltaUs: Math.round((aUs - bUs) * 10) / 10 };
    })
    .sort((x, y) => y.deltaUs - x.deltaUs);
}

export interface Burst {
  /** Monotonic ms (pipeline-common.ts) of the first sample. */
  readonly atMs: number;
  /** From the first to the last sample of the burst. */
  readonly durationMs: number;
}

/**
 * Stretches of the whole profile during which a function whose name is `functionName` was on
 * the stack (samples less than 3 ms apart are one stretch): how long each call blocked the
 * event loop, for work that runs now and then (a resync, a compile) rather than per event.
 */
export function functionBursts(path: string, functionName: string): Burst[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const memo = new Map<number, boolean>();
  const onStack = (id: number): boolean => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const up = parent.get(id);
    const value = byId.get(id)?.callFrame.functionName === functionName || (up !== undefined && onStack(up));
    memo.set(id, value);
    return value;
  };
  const bursts: { first: number; last: number }[] = [];
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (!onStack(id)) return;
    const last = bursts[bursts.length - 1];
    if (last && t - last.last < 3000) last.last = t;
    else bursts.push({ first: t, last: t });
  });
  return bursts.map((b) => ({ atMs: b.first / 1000, durationMs: Math.round((b.last - b.first) / 100) / 10 }));
}
