/**
 * The shape of a benchmark's result, its table, and the harness every `bench/*.bench.ts` runs in.
 *
 * A benchmark fills a {@link BenchContext} as it goes (params, figures, notes, details), so a run
 * that times out or fails still reports what it measured. Speed and memory figures are reported
 * as ratios against raw limits measured in the same run (group `ratios`); absolute figures are
 * context for those ratios, never pass/fail thresholds.
 *
 * Protocol with bench/run.ts: when `FERRY_BENCH_RESULT_FILE` is set the harness writes the JSON
 * result there and prints nothing but progress (on stderr); run.ts prints the table and stores
 * the result. Run alone (`node bench/x.bench.ts`), it stores and prints the result itself.
 * Exit code: 0 when the run completed, 1 when it was incomplete or failed (the result is still
 * written).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineFacts, type MachineFacts } from './machine.ts';
import { now } from './timing.ts';

export type Unit = 'ms' | 'bytes' | 'count' | 'ratio' | 'per_second' | 'cpu_seconds' | 'cores';

export interface Figure {
  /** Stable machine-readable name, e.g. `ferry.allReadyMs`. */
  readonly key: string;
  readonly label: string;
  /** null when it could not be measured in this run (see the notes). */
  readonly value: number | null;
  readonly unit: Unit;
  /** Table section; `ratios` is printed first. */
  readonly group: string;
  readonly note?: string;
}

export type BenchStatus = 'complete' | 'incomplete' | 'failed';
export type ParamValue = string | number | boolean;

export interface BenchResult {
  readonly schemaVersion: 1;
  readonly name: string;
  readonly title: string;
  readonly status: BenchStatus;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly machine: MachineFacts;
  readonly params: Readonly<Record<string, ParamValue>>;
  readonly figures: readonly Figure[];
  readonly notes: readonly string[];
  readonly error?: string;
  /** Raw material behind the figures: timelines, metric snapshots, log summaries. */
  readonly details: Readonly<Record<string, unknown>>;
}

export const RATIOS_GROUP = 'ratios';

export interface BenchContext {
  readonly params: Record<string, ParamValue>;
  readonly details: Record<string, unknown>;
  readonly notes: string[];
  /** Adds (or replaces, by key) a figure; `undefined`/NaN values are stored as null. */
  figure(group: string, key: string, label: string, value: number | undefined, unit: Unit, note?: string): void;
  /** Progress line on stderr, prefixed with the seconds since the benchmark started. */
  log(message: string): void;
}

export const resultsDir = join(import.meta.dirname, '..', 'results');

export function resultPath(name: string): string {
  return join(resultsDir, `${name}.json`);
}

export function writeResult(result: BenchResult, path = resultPath(result.name)): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
}

/**
 * Runs one benchmark and reports it (see the module comment). Never returns: exits the process,
 * which also kills any server it started (test/env/managed-process.ts).
 */
export async function runBenchmark(
  meta: { readonly name: string; readonly title: string },
  body: (ctx: BenchContext) => Promise<BenchStatus>,
): Promise<never> {
  const started = now();
  const startedAt = new Date().toISOString();
  const figures = new Map<string, Figure>();
  const ctx: BenchContext = {
    params: {},
    details: {},
    notes: [],
    figure(group, key, label, value, unit, note) {
      const v = value === undefined || Number.isNaN(value) ? null : value;
      figures.set(key, { key, label, value: v, unit, group, ...(note === undefined ? {} : { note }) });
    },
    log(message) {
      process.stderr.write(`[${meta.name} +${((now() - started) / 1000).toFixed(1)}s] ${message}\n`);
    },
  };
  let status: BenchStatus;
  let error: string | undefined;
  try {
    status = await body(ctx);
  } catch (err) {
    status = 'failed';
    error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    ctx.log(`failed: ${error}`);
  }
  const result: BenchResult = {
    schemaVersion: 1,
    name: meta.name,
    title: meta.title,
    status,
    startedAt,
    durationMs: Math.round(now() - started),
    machine: machineFacts(),
    params: ctx.params,
    figures: [...figures.values()],
    notes: ctx.notes,
    ...(error === undefined ? {} : { error }),
    details: ctx.details,
  };
  const handshake = process.env.FERRY_BENCH_RESULT_FILE;
  if (handshake) {
    writeResult(result, handshake);
  } else {
    writeResult(result);
    process.stdout.write(`${formatReport(result)}\nresult written to ${resultPath(result.name)}\n`);
  }
  process.exit(status === 'complete' ? 0 : 1);
}

const MiB = 1024 * 1024;

export function formatValue(value: number | null, unit: Unit): string {
  if (value === null || !Number.isFinite(value)) return '—';
  switch (unit) {
    case 'ms':
      return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(value >= 100 ? 0 : 1)} ms`;
    case 'bytes':
      return `${(value / MiB).toFixed(1)} MiB`;
    case 'count':
      return Number.isInteger(value) ? String(value) : value.toFixed(1);
    case 'ratio':
      return `× ${value.toFixed(2)}`;
    case 'per_second':
      return `${value.toFixed(1)} /s`;
    case 'cpu_seconds':
      return `${value.toFixed(1)} CPU-s`;
    case 'cores':
      return `${value.toFixed(2)} cores`;
  }
}

export function formatMachine(m: MachineFacts): string {
  return `${m.cores} cores, ${m.cpuModel}, ${(m.totalMemoryBytes / 1024 ** 3).toFixed(1)} GiB RAM, Node ${m.nodeVersion}, ${m.platform}, kernel ${m.kernel}, load ${m.loadAverage.join(' ')}`;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === 1 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The human-readable report: header, machine, params, then one table per figure group. */
export function formatReport(result: BenchResult): string {
  const lines: string[] = [];
  lines.push(`== ${result.name}: ${result.title} — ${result.status.toUpperCase()} (${(result.durationMs / 1000).toFixed(0)} s)`);
  lines.push(`machine: ${formatMachine(result.machine)}`);
  const params = Object.entries(result.params).map(([k, v]) => `${k}=${String(v)}`);
  if (params.length > 0) lines.push(`params:  ${params.join(' ')}`);
  const groups = [...new Set(result.figures.map((f) => f.group))].sort((a, b) => (a === RATIOS_GROUP ? -1 : b === RATIOS_GROUP ? 1 : 0));
  for (const group of groups) {
    lines.push('');
    lines.push(group === RATIOS_GROUP ? 'ratios (Ferry ÷ raw limit measured in this run; × 1.00 = at the limit)' : group);
    const rows = result.figures.filter((f) => f.group === group).map((f) => ['  ' + f.label, formatValue(f.value, f.unit), f.note ?? '']);
    lines.push(table(rows));
  }
  if (result.notes.length > 0) {
    lines.push('');
    lines.push('notes');
    for (const note of result.notes) lines.push(`  - ${note}`);
  }
  if (result.error !== undefined) {
    lines.push('');
    lines.push(`error: ${result.error}`);
  }
  return lines.join('\n');
}
