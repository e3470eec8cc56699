/**
 * The Go worker's CPU profile (pprof, written by `goworker -cpuprofile` over its measured
 * messages only) per event and by package, read through `go tool pprof -top`, so that the
 * pipeline benchmark can set it beside the operator's windowed V8 profile (pipeline-profile.ts).
 * Returns undefined when the profile or the go command is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface GoProfileSummary {
  /** Sampled CPU (every thread) per event, µs. */
  readonly usPerEvent: number;
  /** Self time per event by Go package, most first. */
  readonly byPackage: readonly { readonly name: string; readonly usPerEvent: number; readonly percent: number }[];
}

/**
 * The package of a pprof function name: `net/http.(*Transport).RoundTrip` → `net/http`; the Go
 * runtime's internals and assembly (`memeqbody`) count as `runtime`, its system calls as `syscall`.
 */
export function goPackageOf(fn: string): string {
  // The package path ends at the first dot after its last slash; a receiver `(*T)` or type
  // arguments `[…]` may hold slashes of their own.
  const bracket = fn.search(/[([]/);
  const slash = fn.lastIndexOf('/', bracket < 0 ? fn.length : bracket);
  const dot = fn.indexOf('.', slash + 1);
  const pkg = dot < 0 ? 'runtime' : decodeURIComponent(fn.slice(0, dot));
  if (pkg === 'internal/runtime/syscall/linux' || pkg === 'syscall' || pkg === 'internal/poll') return 'syscall';
  if (pkg.startsWith('internal/runtime/') || pkg.startsWith('internal/sync') || pkg === 'sync' || pkg === 'sync/atomic') return 'runtime';
  return pkg;
}

/** Parses `go tool pprof -top -unit=us` output: total sampled µs and flat µs per function. */
export function parsePprofTop(text: string): { totalUs: number; flat: Map<string, number> } {
  const totalUs = Number(/Total samples = ([\d.]+)us/.exec(text)?.[1] ?? 0);
  const flat = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)us\s+[\d.]+%\s+[\d.]+%\s+[\d.]+us\s+[\d.]+%\s+(.+)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) flat.set(m[2].trim(), Number(m[1]));
  }
  return { totalUs, flat };
}

export function summarizeGoProfile(binary: string, profile: string, events: number): GoProfileSummary | undefined {
  if (!existsSync(profile) || events <= 0) return undefined;
  let text: string;
  try {
    text = execFileSync('go', ['tool', 'pprof', '-top', '-nodecount=1000000', '-unit=us', binary, profile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const { totalUs, flat } = parsePprofTop(text);
  if (totalUs <= 0) return undefined;
  const byPkg = new Map<string, number>();
  for (const [fn, us] of flat) byPkg.set(goPackageOf(fn), (byPkg.get(goPackageOf(fn)) ?? 0) + us);
  const round = (v: number): number => Math.round(v * 10) / 10;
  return {
    usPerEvent: round(totalUs / events),
    byPackage: [...byPkg]
      .sort((x, y) => y[1] - x[1])
      .map(([name, us]) => ({ name, usPerEvent: round(us / events), percent: round((us * 100) / totalUs) })),
  };
}
