/**
 * `npm run bench [-- NAME...]`: runs every `bench/*.bench.ts`, or only those named, each in its
 * own child process (so one benchmark's memory, servers and leftovers cannot affect the next),
 * prints a table per benchmark with the machine's facts, and stores the machine-readable result
 * in `bench/results/<name>.json` (git-ignored).
 *
 * Exit codes: 0 when every benchmark completed; 1 when one was incomplete or failed (its result
 * is still stored and printed); 2 for a malformed command line (usage is printed).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { machineFacts } from './lib/machine.ts';
import { formatMachine, formatReport, resultPath, writeResult, type BenchResult } from './lib/result.ts';

const benchDir = import.meta.dirname;
const SUFFIX = '.bench.ts';

function available(): string[] {
  return readdirSync(benchDir)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
}

function usage(): string {
  return [
    'Usage: npm run bench [-- NAME...]',
    '       node bench/run.ts [--list | --help] [NAME...]',
    '',
    'Runs the benchmarks bench/NAME.bench.ts (all of them when no NAME is given), each in its own',
    'process, prints a table per benchmark and writes bench/results/NAME.json.',
    '',
    `Benchmarks: ${available().join(', ') || '(none)'}`,
    '',
    'control-plane-scale reads FERRY_BENCH_N (1000, or a list: 100,1000,3000), FERRY_BENCH_PARALLELISM (32),',
    'FERRY_BENCH_IDLE_SETTLE_S (10), FERRY_BENCH_IDLE_S (30),',
    'FERRY_BENCH_TIMEOUT_S (600), FERRY_BENCH_WARMUP (64), FERRY_BENCH_OPERATOR_ARGS,',
    'FERRY_BENCH_LOG_LEVEL (info), FERRY_BENCH_CPU_PROF=1. See bench/README.md.',
  ].join('\n');
}

type Parsed = { readonly kind: 'run'; readonly names: readonly string[] } | { readonly kind: 'help' | 'list' } | { readonly kind: 'error'; readonly message: string };

/** Accepts `name`, `name.bench.ts` and `bench/name.bench.ts`; anything else is an error. */
function parseArgs(args: readonly string[], known: readonly string[]): Parsed {
  const names: string[] = [];
  for (const arg of args) {
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--list') return { kind: 'list' };
    if (arg.startsWith('-')) return { kind: 'error', message: `unknown option ${JSON.stringify(arg)}` };
    const file = basename(arg);
    const name = file.endsWith(SUFFIX) ? file.slice(0, -SUFFIX.length) : file;
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name) || (arg.includes('/') && arg !== `bench/${file}`)) {
      return { kind: 'error', message: `malformed benchmark name ${JSON.stringify(arg)}` };
    }
    if (!known.includes(name)) return { kind: 'error', message: `no benchmark named ${JSON.stringify(name)}` };
    if (!names.includes(name)) names.push(name);
  }
  return { kind: 'run', names: names.length > 0 ? names : known };
}

async function runOne(name: string): Promise<BenchResult | undefined> {
  const scratch = mkdtempSync(join(tmpdir(), `ferry-bench-${name}-`));
  const handshake = join(scratch, 'result.json');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [join(benchDir, `${name}${SUFFIX}`)], {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, FERRY_BENCH_RESULT_FILE: handshake },
      });
      child.once('error', reject);
      child.once('exit', (exitCode, signal) => {
        resolve(signal === null ? exitCode : null);
      });
    });
    if (!existsSync(handshake)) {
      console.error(`${name}: the benchmark process exited (code ${String(code)}) without a result`);
      return undefined;
    }
    const result = JSON.parse(readFileSync(handshake, 'utf8')) as BenchResult;
    writeResult(result);
    return result;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const known = available();
  const parsed = parseArgs(process.argv.slice(2), known);
  switch (parsed.kind) {
    case 'help':
      console.log(usage());
      return 0;
    case 'list':
      console.log(known.join('\n'));
      return 0;
    case 'error':
      console.error(`bench: ${parsed.message}\n\n${usage()}`);
      return 2;
    case 'run':
      break;
  }
  console.log(`machine: ${formatMachine(machineFacts())}`);
  let failures = 0;
  for (const name of parsed.names) {
    console.log(`\n>> ${name}`);
    const result = await runOne(name);
    if (!result) {
      failures++;
      continue;
    }
    console.log(`\n${formatReport(result)}\nresult: ${resultPath(name)}`);
    if (result.status !== 'complete') failures++;
  }
  return failures === 0 ? 0 : 1;
}

process.exitCode = await main();
