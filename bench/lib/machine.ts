/**
 * Facts about the machine a benchmark ran on, printed and stored with every result: figures
 * from a 2-core laptop and a 64-core server are not comparable, ratios within one run are.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';

export interface MachineFacts {
  readonly cores: number;
  readonly cpuModel: string;
  readonly totalMemoryBytes: number;
  readonly nodeVersion: string;
  readonly platform: string;
  readonly kernel: string;
  /** 1, 5 and 15 minute load averages when the facts were taken. */
  readonly loadAverage: readonly number[];
}

export function machineFacts(): MachineFacts {
  const cpuList = cpus();
  return {
    cores: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    totalMemoryBytes: totalmem(),
    nodeVersion: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: release(),
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** The commit the operator ran from, `+dirty` when src/ has uncommitted changes: src/ moves between runs. */
export function gitCommit(): string {
  try {
    const cwd = join(import.meta.dirname, '..', '..');
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}
