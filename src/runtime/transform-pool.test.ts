/**
 * The pool's policy — lazy start, deadlines, replacement, queue bound, fairness — with fake
 * workers and a ManualClock. The real worker round trip is in transform-worker.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, silentLogger } from '../observability/index.ts';
import { TransformDepthError, TransformError, TransformQueueTimeoutError, TransformTimeoutError, TransformWorkerError } from './errors.ts';
import { TransformPool, type JsonataTask, type SpawnWorker, type TransformPoolMetrics, type WorkerEvents, type WorkerHandle } from './transform-pool.ts';
import type { EvaluateRequest, SerializedTransformError } from './transform-protocol.ts';

class FakeWorker {
  readonly requests: EvaluateRequest[] = [];
  terminated = false;
  readonly handle: WorkerHandle;
  private readonly events: WorkerEvents;

  constructor(events: WorkerEvents) {
    this.events = events;
    this.handle = {
      post: (request) => {
        this.requests.push(request);
      },
      terminate: () => {
        this.terminated = true;
        // A real worker reports its exit after terminate(): the pool must ignore it.
        queueMicrotask(() => {
          this.events.exit(1);
        });
        return Promise.resolve();
      },
    };
  }

  ready(): void {
    this.events.message({ type: 'ready' });
  }

  /** The request this worker is working on (the last one posted). */
  get current(): EvaluateRequest {
    const r = this.requests.at(-1);
    assert.ok(r, 'the worker was given a task');
    return r;
  }

  reply(value: unknown, id = this.current.id): void {
    this.events.message({ type: 'result', id, value });
  }

  fail(error: SerializedTransformError): void {
    this.events.message({ type: 'error', id: this.current.id, error });
  }

  crash(err: Error, code = 1): void {
    this.events.error(err);
    this.events.exit(code);
  }
}

function fakeWorkers(): { spawn: SpawnWorker; workers: FakeWorker[] } {
  const workers: FakeWorker[] = [];
  return {
    workers,
    spawn: (events) => {
      const w = new FakeWorker(events);
      workers.push(w);
      return w.handle;
    },
  };
}

function recordingMetrics(): TransformPoolMetrics & { replaced: string[]; depth: number } {
  const m = {
    replaced: [] as string[],
    depth: 0,
    workerReplaced(reason: string) {
      m.replaced.push(reason);
    },
    queueDepth(n: number) {
      m.depth = n;
    },
  };
  return m;
}

const task = (key: string, source = 'x', timeoutMs = 1_000): JsonataTask => ({ key, source, data: { key }, limits: { timeoutMs, maxDepth: 200 } });

/** Settles a promise into an inspectable record without awaiting it. */
function track<T>(p: Promise<T>): { readonly settled: boolean; readonly value?: T; readonly error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  p.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

/** One task per worker at a time unless `tasksPerWorker` says otherwise: most cases are about one task. */
function setup(size: number, extra: { maxQueueWaitMs?: number; killGraceMs?: number; tasksPerWorker?: number } = {}) {
  const clock = new ManualClock();
  const fakes = fakeWorkers();
  const metrics = recordingMetrics();
  const pool = new TransformPool({ size, clock, logger: silentLogger(), spawn: fakes.spawn, metrics, killGraceMs: 100, maxQueueWaitMs: 10_000, tasksPerWorker: 1, ...extra });
  return { clock, pool, workers: fakes.workers, metrics };
}

describe('TransformPool', () => {
  it('starts no worker until a task needs one, then at most one per waiting task up to its size', async () => {
    const { clock, pool, workers } = setup(3);
    assert.equal(workers.length, 0);
    const a = track(pool.evaluate(task('a')));
    assert.equal(workers.length, 1);
    const b = track(pool.evaluate(task('b')));
    assert.equal(workers.length, 2);
    workers[0]?.ready();
    assert.equal(workers[0]?.current.source, 'x');
    workers[0]?.reply('A');
    await clock.advance(0);
    assert.deepEqual(a, { settled: true, value: 'A' });
    // `b` went to the first worker as soon as it was free; the second is not needed for it.
    workers[1]?.ready();
    assert.equal(workers[0]?.requests.length, 2);
    assert.equal(workers[1]?.requests.length, 0);
    workers[0]?.reply('B');
    await clock.advance(0);
    assert.deepEqual(b, { settled: true, value: 'B' });
    assert.equal(workers.length, 2, 'never more than needed');
  });

  it('passes the request through: source, data and limits', () => {
    const { pool, workers } = setup(1);
    void pool.evaluate({ key: 'ns/a', source: '{ "id": id }', data: { id: 7 }, limits: { timeoutMs: 250, maxDepth: 42 } }).catch(() => undefined);
    workers[0]?.ready();
    const r = workers[0]?.current;
    assert.deepEqual({ source: r?.source, data: r?.data, timeoutMs: r?.timeoutMs, maxDepth: r?.maxDepth }, { source: '{ "id": id }', data: { id: 7 }, timeoutMs: 250, maxDepth: 42 });
  });

  it('rebuilds the typed errors the worker reports', async () => {
    const { clock, pool, workers } = setup(1);
    const results = [track(pool.evaluate(task('a'))), track(pool.evaluate(task('a'))), track(pool.evaluate(task('a')))];
    const w = workers[0];
    assert.ok(w);
    w.ready();
    w.fail({ kind: 'transform', reason: 'expression', message: 'transform expression failed at position 8: boom (D3001)', jsonataCode: 'D3001', position: 8 });
    w.fail({ kind: 'depth', maxDepth: 200 });
    w.fail({ kind: 'timeout', timeoutMs: 1_000, elapsedMs: 1_001 });
    await clock.advance(0);
    const [expression, depth, timeout] = results.map((r) => r.error);
    assert.ok(expression instanceof TransformError);
    assert.equal(expression.jsonataCode, 'D3001');
    assert.equal(expression.position, 8);
    assert.equal(expression.message, 'transform expression failed at position 8: boom (D3001)');
    assert.ok(depth instanceof TransformDepthError);
    assert.equal(depth.maxDepth, 200);
    assert.ok(timeout instanceof TransformTimeoutError);
    assert.equal(timeout.elapsedMs, 1_001);
    assert.equal(w.terminated, false, 'a worker that stopped the evaluation itself is kept');
  });

  it('starts the time box when a worker takes the task, not while the worker starts', async () => {
    const { clock, pool, workers } = setup(1);
    const a = track(pool.evaluate(task('a', 'x', 1_000)));
    // A slow start-up (a loaded machine) does not eat into the budget.
    await clock.advance(5_000);
    assert.equal(a.settled, false);
    workers[0]?.ready();
    await clock.advance(1_099);
    assert.equal(a.settled, false, 'still within timeoutMs + grace');
    workers[0]?.reply('done');
    await clock.advance(0);
    assert.deepEqual(a, { settled: true, value: 'done' });
  });

  it('terminates a worker past timeoutMs + grace, fails the task with TransformTimeoutError, and serves the next task on a new worker', async () => {
    const { clock, pool, workers, metrics } = setup(1);
    const evil = track(pool.evaluate(task('evil', 'evil', 1_000)));
    const next = track(pool.evaluate(task('good', 'good')));
    workers[0]?.ready();
    await clock.advance(1_100);
    assert.ok(evil.error instanceof TransformTimeoutError);
    assert.equal(evil.error.timeoutMs, 1_000);
    assert.equal(evil.error.elapsedMs, 1_100);
    assert.match(evil.error.message, /^transform expression ran for 1100 ms, over its 1000 ms limit, and was stopped$/);
    assert.equal(workers[0]?.terminated, true);
    assert.deepEqual(metrics.replaced, ['timeout']);
    // The replacement starts because a task waits; the killed worker's exit is ignored.
    assert.equal(workers.length, 2);
    assert.equal(pool.workers, 1);
    workers[1]?.ready();
    assert.equal(workers[1]?.current.source, 'good');
    // A late answer from the terminated worker reaches nobody.
    workers[0]?.reply('late', 1);
    workers[1]?.reply('G');
    await clock.advance(0);
    assert.deepEqual(next, { settled: true, value: 'G' });
  });

  it('fails a task that waits longer than maxQueueWaitMs for a worker; the running one is unaffected', async () => {
    const { clock, pool, workers, metrics } = setup(1, { maxQueueWaitMs: 3_000 });
    const slow = track(pool.evaluate(task('slow', 'slow', 60_000)));
    workers[0]?.ready();
    await clock.advance(1_000);
    const waiting = track(pool.evaluate(task('other')));
    assert.equal(metrics.depth, 1);
    await clock.advance(2_999);
    assert.equal(waiting.settled, false);
    await clock.advance(1);
    assert.ok(waiting.error instanceof TransformQueueTimeoutError);
    assert.equal(waiting.error.waitedMs, 3_000);
    assert.equal(waiting.error.code, 'FERRY_TRANSFORM_QUEUE_TIMEOUT');
    assert.match(waiting.error.message, /^no transform worker became free within 3000 ms/);
    assert.equal(pool.waiting, 0);
    assert.equal(metrics.depth, 0);
    workers[0]?.reply('S');
    await clock.advance(0);
    assert.deepEqual(slow, { settled: true, value: 'S' });
    // The expired task was never handed to a worker.
    assert.equal(workers[0]?.requests.length, 1);
  });

  it('a task taken by a worker is no longer subject to the queue bound', async () => {
    const { clock, pool, workers } = setup(1, { maxQueueWaitMs: 1_000 });
    const a = track(pool.evaluate(task('a', 'x', 5_000)));
    workers[0]?.ready();
    await clock.advance(3_000);
    assert.equal(a.settled, false);
    workers[0]?.reply(1);
    await clock.advance(0);
    assert.deepEqual(a, { settled: true, value: 1 });
  });

  it('serves Integrations in turn: one with many waiting tasks does not hold back another', async () => {
    const { clock, pool, workers } = setup(1);
    const order: string[] = [];
    const all = ['a', 'a', 'a', 'b'].map((key, i) => pool.evaluate(task(key, `${key}${i}`)).then(() => order.push(`${key}${i}`)));
    const w = workers[0];
    assert.ok(w);
    w.ready();
    for (let i = 0; i < 4; i++) {
      w.reply(null);
      await clock.advance(0);
    }
    await Promise.all(all);
    // After a0, a has had its turn: b3 goes before a1 although it arrived after it.
    assert.deepEqual(order, ['a0', 'b3', 'a1', 'a2']);
  });

  it('fails the task of a worker that dies under it with TransformWorkerError, and replaces the worker', async () => {
    const { clock, pool, workers, metrics } = setup(1);
    const a = track(pool.evaluate(task('a')));
    const b = track(pool.evaluate(task('b')));
    workers[0]?.ready();
    workers[0]?.crash(Object.assign(new Error('Worker terminated due to reaching memory limit: JS heap out of memory'), { code: 'ERR_WORKER_OUT_OF_MEMORY' }));
    await clock.advance(0);
    assert.ok(a.error instanceof TransformWorkerError);
    assert.equal(a.error.reason, 'exited');
    assert.match(a.error.message, /^transform worker died during the evaluation \(exit code 1: Worker terminated due to reaching memory limit/);
    assert.deepEqual(metrics.replaced, ['exited']);
    assert.equal(workers.length, 2);
    workers[1]?.ready();
    workers[1]?.reply('B');
    await clock.advance(0);
    assert.deepEqual(b, { settled: true, value: 'B' });
  });

  it('a worker that cannot start fails one waiting task per attempt and stops trying once nothing waits', async () => {
    const { clock, pool, workers, metrics } = setup(1);
    const a = track(pool.evaluate(task('a')));
    const b = track(pool.evaluate(task('b')));
    workers[0]?.crash(new Error('Cannot find module transform-worker.js'));
    await clock.advance(0);
    assert.ok(a.error instanceof TransformWorkerError);
    assert.equal(a.error.reason, 'start');
    assert.match(a.error.message, /could not start: transform worker exited with code 1 before it was ready: Cannot find module/);
    assert.equal(b.settled, false);
    workers[1]?.crash(new Error('Cannot find module transform-worker.js'));
    await clock.advance(0);
    assert.ok(b.error instanceof TransformWorkerError);
    assert.equal(workers.length, 2, 'no third attempt: nothing waits');
    assert.deepEqual(metrics.replaced, ['start', 'start']);
  });

  it('refuses limits that would disable the deadline', async () => {
    const { pool, workers } = setup(1);
    await assert.rejects(pool.evaluate({ key: 'a', source: 'x', data: {}, limits: { timeoutMs: Number.NaN, maxDepth: 10 } }), RangeError);
    await assert.rejects(pool.evaluate({ key: 'a', source: 'x', data: {}, limits: { timeoutMs: 10, maxDepth: 0 } }), RangeError);
    assert.equal(workers.length, 0);
    assert.throws(() => new TransformPool({ size: 0, clock: new ManualClock(), logger: silentLogger() }), RangeError);
  });

  it('lines up tasks of one Integration on a worker and times each from the answer before it', async () => {
    const { clock, pool, workers, metrics } = setup(1, { tasksPerWorker: 3 });
    const [a, b, c, d] = ['a1', 'a2', 'a3', 'a4'].map((source) => track(pool.evaluate(task('ns/a', source, 1_000))));
    const w = workers[0];
    assert.ok(w);
    w.ready();
    assert.deepEqual(w.requests.map((r) => r.source), ['a1', 'a2', 'a3'], 'three at once, in order');
    await clock.advance(900);
    w.reply('A', w.requests[0]?.id);
    await clock.advance(0);
    assert.deepEqual(a, { settled: true, value: 'A' });
    assert.deepEqual(w.requests.map((r) => r.source), ['a1', 'a2', 'a3', 'a4'], 'the line is topped up');
    // a2's time box started when a1's answer arrived (t = 900), not when it was handed over.
    await clock.advance(1_099);
    assert.equal(b?.settled, false);
    await clock.advance(1);
    assert.ok(b?.error instanceof TransformTimeoutError);
    assert.equal(b.error.elapsedMs, 1_100);
    assert.equal(w.terminated, true);
    assert.deepEqual(metrics.replaced, ['timeout']);
    // a3 and a4 were never reached: they are served by the replacement, in order, not failed.
    assert.equal(c?.settled, false);
    const next = workers[1];
    assert.ok(next);
    next.ready();
    assert.deepEqual(next.requests.map((r) => r.source), ['a3', 'a4']);
    next.reply('C', next.requests[0]?.id);
    next.reply('D', next.requests[1]?.id);
    await clock.advance(0);
    assert.deepEqual([c, d], [
      { settled: true, value: 'C' },
      { settled: true, value: 'D' },
    ]);
  });

  it('never lines up a task behind another Integration, nor while another Integration waits', async () => {
    const { clock, pool, workers } = setup(2, { tasksPerWorker: 4 });
    const a1 = track(pool.evaluate(task('ns/a', 'a1')));
    const w0 = workers[0];
    assert.ok(w0);
    w0.ready();
    const b1 = track(pool.evaluate(task('ns/b', 'b1')));
    const a2 = track(pool.evaluate(task('ns/a', 'a2')));
    assert.deepEqual(w0.requests.map((r) => r.source), ['a1'], 'b1 is not lined up behind a1, nor a2 while b1 waits');
    assert.equal(workers.length, 2, 'a worker starts for the waiting task instead');
    workers[1]?.ready();
    assert.deepEqual(workers[1]?.requests.map((r) => r.source), ['b1']);
    assert.deepEqual(w0.requests.map((r) => r.source), ['a1', 'a2'], 'once only ns/a waits, it joins the line of ns/a');
    w0.reply('A1', w0.requests[0]?.id);
    w0.reply('A2', w0.requests[1]?.id);
    workers[1]?.reply('B1');
    await clock.advance(0);
    assert.deepEqual([a1.value, a2.value, b1.value], ['A1', 'A2', 'B1']);
  });

  it('a worker that dies fails only the task it was running; the ones it had not reached are served by the next', async () => {
    const { clock, pool, workers, metrics } = setup(1, { tasksPerWorker: 3 });
    const [x1, x2, x3] = ['x1', 'x2', 'x3'].map((source) => track(pool.evaluate(task('ns/x', source))));
    workers[0]?.ready();
    workers[0]?.crash(new Error('boom'));
    await clock.advance(0);
    assert.ok(x1?.error instanceof TransformWorkerError);
    assert.deepEqual(metrics.replaced, ['exited']);
    const next = workers[1];
    assert.ok(next);
    next.ready();
    assert.deepEqual(next.requests.map((r) => r.source), ['x2', 'x3']);
    next.reply(2, next.requests[0]?.id);
    next.reply(3, next.requests[1]?.id);
    await clock.advance(0);
    assert.deepEqual([x2?.value, x3?.value], [2, 3]);
  });

  it('close() fails waiting and running tasks, terminates the workers and refuses new tasks', async () => {
    const { clock, pool, workers } = setup(1);
    const running = track(pool.evaluate(task('a')));
    const waiting = track(pool.evaluate(task('b')));
    workers[0]?.ready();
    await pool.close();
    await clock.advance(0);
    assert.match(String(running.error), /transform pool is closed/);
    assert.match(String(waiting.error), /transform pool is closed/);
    assert.equal(workers[0]?.terminated, true);
    assert.equal(pool.workers, 0);
    await assert.rejects(pool.evaluate(task('c')), /transform pool is closed/);
    assert.equal(clock.pending, 0, 'no timer left behind');
  });
});
