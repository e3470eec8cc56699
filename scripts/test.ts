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
const args = ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...patterns];
const child = spawn(process.execPath, args, {
  stdio: 'inherit',
  env: { ...process.env, FERRY_PID_DIR: pidDir },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    child.kill(signal);
  });
}
// A test file whose tests have all finished but that keeps a handle open (a failed assertion
// skipped its cleanup) never exits, and the runner waits for it for ever. --test-force-exit would
// end such a file, but it also cuts off the file's report (Node 24 loses the tail of a file's
// results): a watchdog ends the whole run instead, loudly.
const maxMinutes = Number(process.env.FERRY_TEST_MAX_MINUTES ?? '45');
const watchdog = setTimeout(() => {
  console.error(`[ferry test] the run took longer than ${maxMinutes} minutes (FERRY_TEST_MAX_MINUTES): a test file has not exited, most likely a handle left open after its tests; stopping`);
  child.kill('SIGTERM');
}, maxMinutes * 60_000);
watchdog.unref();
child.on('close', (code, signal) => {
  clearTimeout(watchdog);
  reapLeftovers();
  process.exit(code ?? (signal ? 1 : 0));
});
