/**
 * The test runner behind `npm test`, `npm run test:unit` and `npm run test:integration`.
 *
 * Unit tests (`src/**\/*.test.ts`) are pure and need no servers. Integration tests
 * (`test/**\/*.test.ts`) each start their own control plane through test/env; the binaries are
 * built (or found in the cache) once here, before any test file runs, so the build log is shown
 * once and test timeouts never include a multi-minute build.
 *
 * Afterwards every server process the tests recorded in FERRY_PID_DIR and that is still alive is
 * killed and reported: a failing or interrupted run leaves nothing behind.
 *
 * Usage: node scripts/test.ts <unit|integration|all> [test files...]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinaries } from '../test/env/binaries.ts';

const usage = 'usage: node scripts/test.ts <unit|integration|all> [test files...]';
const [mode, ...files] = process.argv.slice(2);
if (mode !== 'unit' && mode !== 'integration' && mode !== 'all') {
  console.error(usage);
  process.exit(2);
}

const patterns: string[] = [];
if (files.length > 0) patterns.push(...files);
else {
  if (mode !== 'integration') patterns.push('src/**/*.test.ts');
  if (mode !== 'unit') patterns.push('test/**/*.test.ts');
}
const needsServers = patterns.some((p) => p.startsWith('test/'));

if (needsServers) await ensureBinaries();

const pidDir = mkdtempSync(join(tmpdir(), 'ferry-pids-'));

function reapLeftovers(): void {
  let names: string[];
  try {
    names = readdirSync(pidDir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number.parseInt(name, 10);
    const what = readFileSync(join(pidDir, name), 'utf8').trim();
    try {
      process.kill(pid, 'SIGKILL');
      console.error(`[ferry test] killed leftover ${what} (pid ${pid})`);
    } catch {
      // already gone: its test file was killed before it could remove the pid file
    }
  }
  rmSync(pidDir, { recursive: true, force: true });
}

// Each integration file starts etcd + kube-apiserver + nats-server. Most of a file's time is spent
// waiting (leases, ack_wait, cron slots, backoff), not computing: measured on 2 cores, the whole
// run used 7.6 CPU-minutes in 14.6 minutes at 2 files at once, and 10.4 minutes at 3, all green.
const concurrency = process.env.FERRY_TEST_CONCURRENCY ?? '3';
// --test-force-exit: a test file whose tests have all finished exits even if a handle is still
// open. A failed assertion that skips a test's own cleanup (a log destination retrying a full pipe
// every 100 ms) otherwise keeps its process, and so the whole run, waiting for ever.
const args = ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', '--test-force-exit', ...patterns];
const child = spawn(process.execPath, args, {
  stdio: 'inherit',
  env: { ...process.env, FERRY_PID_DIR: pidDir },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    child.kill(signal);
  });
}
child.on('close', (code, signal) => {
  reapLeftovers();
  process.exit(code ?? (signal ? 1 : 0));
});
