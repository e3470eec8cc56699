/**
 * Facts about the machine a benchmark ran on, printed and stored with every result: figures
 * from a 2-core laptop and a 64-core server are not comparable, ratios within one run are.
 */
import { cpus, loadavg, release, totalmem } from 'node:os';

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
