/**
 * The operator as the image runs it: `tsc -p tsconfig.build.json` into dist/ (the Dockerfile's
 * build step), then `node dist/cli/main.js`. Run from src/*.ts, Node strips the types of every
 * module as it loads it; its type stripper is a WebAssembly module that adds about 18 MiB of RSS to
 * the process (and again to each transform worker thread), plus compile time at start — none of
 * which ships. FERRY_BENCH_OPERATOR_FROM=src measures the sources instead.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const repo = join(import.meta.dirname, '..', '..');

export type OperatorFrom = 'dist' | 'src';

export function operatorFrom(): OperatorFrom {
  const value = process.env.FERRY_BENCH_OPERATOR_FROM ?? 'dist';
  if (value !== 'dist' && value !== 'src') throw new Error(`FERRY_BENCH_OPERATOR_FROM must be dist or src, not ${value}`);
  return value;
}

/** The operator's entry point for `from`; builds dist/ first when it is asked for. */
export async function operatorMain(from: OperatorFrom): Promise<string> {
  if (from === 'src') return join(repo, 'src', 'cli', 'main.ts');
  await promisify(execFile)(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.build.json')], { cwd: repo });
  return join(repo, 'dist', 'cli', 'main.js');
}
