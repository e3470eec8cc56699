/**
 * No etcd, kube-apiserver or nats-server outlives the test process that started it, however
 * that process ends: an uncaught error, process.exit, Ctrl-C (SIGINT) or SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function allGone(pids: readonly number[], timeoutMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    // Waiting on the kernel to reap other processes; there is no event for that here.
    await sleep(100);
  }
}

async function runChild(how: 'throw' | 'exit' | 'hang', kill?: NodeJS.Signals): Promise<{ pids: number[]; code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ['test/fixtures/start-env-then-die.ts', how], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own pid dir: the runner's sweep must not be what cleans up here.
    env: { ...process.env, FERRY_PID_DIR: '' },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const lines = createInterface({ input: child.stdout });
  let pids: number[] = [];
  for await (const line of lines) {
    pids = (JSON.parse(line) as { pids: number[] }).pids;
    break;
  }
  assert.equal(pids.length, 3, `etcd, kube-apiserver and nats-server were started; child stderr:\n${stderr}`);
  assert.ok(pids.every(alive), 'the servers run while the child lives');
  if (kill) child.kill(kill);
  const [code, signal] = await exited;
  return { pids, code, signal };
}

describe('server processes never outlive their test process', () => {
  it('after an uncaught error', async () => {
    const { pids, code } = await runChild('throw');
    assert.notEqual(code, 0);
    assert.deepEqual(await allGone(pids), []);
  });

  it('after process.exit(1)', async () => {
    const { pids, code } = await runChild('exit');
    assert.equal(code, 1);
    assert.deepEqual(await allGone(pids), []);
  });

  it('after Ctrl-C (SIGINT)', async () => {
    const { pids, signal } = await runChild('hang', 'SIGINT');
    assert.equal(signal, 'SIGINT');
    assert.deepEqual(await allGone(pids), []);
  });

  it('after SIGKILL, which runs no handler at all', async () => {
    const { pids, signal } = await runChild('hang', 'SIGKILL');
    assert.equal(signal, 'SIGKILL');
    assert.deepEqual(await allGone(pids), []);
  });
});
