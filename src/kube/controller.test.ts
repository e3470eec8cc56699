import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, Registry, silentLogger } from '../observability/index.ts';
import { Controller, decide, type ReconcileResult } from './controller.ts';
import { TerminalError } from './errors.ts';
import { WorkQueue } from './work-queue.ts';

async function metric(registry: Registry, name: string, labels: Record<string, string>, series = name): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return Number.NaN;
  const { values } = await m.get();
  const match = values.find(
    (v) => ((v as { metricName?: string }).metricName ?? name) === series && Object.entries(labels).every(([k, val]) => v.labels[k] === val),
  );
  return match?.value ?? 0;
}

/** Lets pending promise chains run (no timers, no real time). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
}
function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  let reject: (err: Error) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup(fn: (key: string, signal: AbortSignal) => ReconcileResult | Promise<ReconcileResult>, concurrency = 1) {
  const clock = new ManualClock();
  const registry = new Registry();
  const queue = new WorkQueue({ name: 'things', clock, registry });
  const reconcile = async (key: string, signal: AbortSignal): Promise<ReconcileResult> => await fn(key, signal);
  const controller = new Controller({ name: 'things', queue, reconcile, concurrency, clock, logger: silentLogger(), registry });
  const stop = new AbortController();
  const running = controller.start(stop.signal);
  return { clock, registry, queue, controller, stop, running };
}

const c = { controller: 'things' };

describe('decide (the pure error policy)', () => {
  it('maps outcomes to queue actions and result labels', () => {
    assert.deepEqual(decide({ ok: true, result: {} }), { forget: true, requeue: { type: 'none' }, result: 'success', error: 'none' });
    assert.deepEqual(decide({ ok: true, result: { requeueAfter: 30_000 } }), {
      forget: true,
      requeue: { type: 'after', delayMs: 30_000 },
      result: 'requeue_after',
      error: 'none',
    });
    assert.equal(decide({ ok: true, result: { requeueAfter: 0 } }).result, 'success');
    assert.deepEqual(decide({ ok: false, error: new Error('boom') }), {
      forget: false,
      requeue: { type: 'backoff' },
      result: 'error',
      error: 'retryable',
    });
    assert.deepEqual(decide({ ok: false, error: new TerminalError('bad spec') }), {
      forget: true,
      requeue: { type: 'none' },
      result: 'error',
      error: 'terminal',
    });
    assert.deepEqual(decide({ ok: false, error: new Error('x') }, () => ({ type: 'requeue-after', delayMs: 7 })).requeue, {
      type: 'after',
      delayMs: 7,
    });
  });
});

describe('Controller', () => {
  it('success: forgets the key and does not requeue it', async () => {
    const calls: string[] = [];
    const { queue, clock, registry, stop, running } = setup((key) => {
      calls.push(key);
      return {};
    });
    queue.add('ns/a');
    await settle();
    await clock.advance(60_000);
    await settle();
    assert.deepEqual(calls, ['ns/a']);
    assert.equal(await metric(registry, 'controller_runtime_reconcile_total', { ...c, result: 'success' }), 1);
    assert.equal(await metric(registry, 'controller_runtime_reconcile_errors_total', c), 0);
    stop.abort();
    await running;
  });

  it('error: requeues with growing backoff and counts every failure', async () => {
    const times: number[] = [];
    const { queue, clock, registry, stop, running } = setup(() => {
      times.push(clock.now());
      throw new Error('API down');
    });
    const t0 = clock.now();
    queue.add('ns/a');
    await settle();
    for (let i = 0; i < 40; i++) {
      await clock.advance(1);
      await settle();
    }
    // 0, +5, +10, +20 ms after the previous attempt.
    assert.deepEqual(
      times.map((t) => t - t0),
      [0, 5, 15, 35],
    );
    assert.equal(await metric(registry, 'controller_runtime_reconcile_total', { ...c, result: 'error' }), 4);
    assert.equal(await metric(registry, 'controller_runtime_reconcile_errors_total', c), 4);
    assert.equal(await metric(registry, 'controller_runtime_terminal_reconcile_errors_total', c), 0);
    assert.equal(queue.numRequeues('ns/a'), 4);
    stop.abort();
    await running;
  });

  it('terminal error: counted and logged, never requeued', async () => {
    let calls = 0;
    const { queue, clock, registry, stop, running } = setup(() => {
      calls++;
      throw new TerminalError('spec.target.url is not a URL');
    });
    queue.add('ns/a');
    await settle();
    await clock.advance(3_600_000);
    await settle();
    assert.equal(calls, 1);
    assert.equal(await metric(registry, 'controller_runtime_terminal_reconcile_errors_total', c), 1);
    assert.equal(await metric(registry, 'controller_runtime_reconcile_errors_total', c), 1);
    assert.equal(await metric(registry, 'controller_runtime_reconcile_total', { ...c, result: 'error' }), 1);
    stop.abort();
    await running;
  });

  it('requeueAfter: forgets the backoff and comes back after exactly that delay', async () => {
    const times: number[] = [];
    let fail = true;
    const { queue, clock, registry, stop, running } = setup(() => {
      times.push(clock.now());
      if (fail) {
        fail = false;
        throw new Error('once');
      }
      return { requeueAfter: 10_000 };
    });
    const t0 = clock.now();
    queue.add('ns/a');
    await settle();
    assert.equal(queue.numRequeues('ns/a'), 1);
    await clock.advance(5); // the backoff retry succeeds with requeueAfter
    await settle();
    assert.equal(queue.numRequeues('ns/a'), 0, 'forgotten');
    await clock.advance(9_999);
    await settle();
    assert.equal(times.length, 2);
    await clock.advance(1);
    await settle();
    assert.deepEqual(
      times.map((t) => t - t0),
      [0, 5, 10_005],
    );
    assert.equal(await metric(registry, 'controller_runtime_reconcile_total', { ...c, result: 'requeue_after' }), 2);
    stop.abort();
    await running;
  });

  it('runs at most `concurrency` keys at once and never one key twice at once', async () => {
    const gates = new Map<string, Deferred<ReconcileResult>[]>();
    const active = new Set<string>();
    let overlap = false;
    let maxActive = 0;
    const { queue, registry, stop, running } = setup(async (key) => {
      if (active.has(key)) overlap = true;
      active.add(key);
      maxActive = Math.max(maxActive, active.size);
      const gate = deferred<ReconcileResult>();
      gates.set(key, [...(gates.get(key) ?? []), gate]);
      try {
        return await gate.promise;
      } finally {
        active.delete(key);
      }
    }, 2);

    queue.add('a');
    queue.add('b');
    queue.add('c');
    await settle();
    assert.deepEqual([...active].sort(), ['a', 'b']);
    assert.equal(await metric(registry, 'controller_runtime_active_workers', c), 2);
    assert.equal(await metric(registry, 'controller_runtime_max_concurrent_reconciles', c), 2);

    queue.add('a'); // changes while in process
    await settle();
    assert.equal(gates.get('a')?.length, 1, 'not started a second time while running');

    gates.get('a')?.[0]?.resolve({});
    await settle();
    // 'c' was queued first; it takes the free worker. 'a' waits for the next one.
    assert.ok(active.has('c'));
    gates.get('b')?.[0]?.resolve({});
    await settle();
    assert.equal(gates.get('a')?.length, 2, 'reconciled again after done');
    gates.get('a')?.[1]?.resolve({});
    gates.get('c')?.[0]?.resolve({});
    await settle();
    assert.equal(overlap, false);
    assert.equal(maxActive, 2);
    assert.equal(await metric(registry, 'controller_runtime_active_workers', c), 0);
    stop.abort();
    await running;
  });

  it('stop aborts the reconcile signal and waits for running reconciles', async () => {
    const gate = deferred<ReconcileResult>();
    let seen: AbortSignal | undefined;
    const { queue, stop, running } = setup(async (_key, signal) => {
      seen = signal;
      return await gate.promise;
    });
    queue.add('a');
    await settle();
    stop.abort();
    let finished = false;
    void running.then(() => {
      finished = true;
    });
    await settle();
    assert.equal(seen?.aborted, true);
    assert.equal(finished, false, 'waits for the reconcile in flight');
    gate.resolve({});
    await running;
    assert.equal(finished, true);
    assert.equal(queue.isShuttingDown, true);
  });

  it('runs again after it stopped (a new leader term): reconciles every key from keys(), including ones added while stopped', async () => {
    const clock = new ManualClock();
    const registry = new Registry();
    const queue = new WorkQueue({ name: 'things', clock, registry });
    const store = new Set<string>(['a']);
    const reconciled: string[] = [];
    const controller = new Controller({
      name: 'things',
      queue,
      keys: () => store,
      reconcile: async (key) => {
        reconciled.push(key);
        return await Promise.resolve({ requeueAfter: 60_000 });
      },
      clock,
      logger: silentLogger(),
      registry,
    });

    const term1 = new AbortController();
    const run1 = controller.start(term1.signal);
    await settle();
    assert.deepEqual(reconciled, ['a'], 'the first run enqueues every key itself');
    term1.abort();
    await run1;

    // While stopped (a follower): a new object appears; the queue ignores the add.
    store.add('b');
    queue.add('b');
    await clock.advance(120_000);
    assert.deepEqual(reconciled, ['a'], 'nothing runs between terms, not even the requeueAfter of the old term');

    const term2 = new AbortController();
    const run2 = controller.start(term2.signal);
    await settle();
    assert.deepEqual([...reconciled].sort(), ['a', 'a', 'b'], 'the new term reconciles everything again, including what was added meanwhile');
    queue.add('a');
    await settle();
    assert.equal(reconciled.filter((k) => k === 'a').length, 3, 'later adds are handled: the workers are alive');
    await clock.advance(60_000);
    await settle();
    assert.equal(reconciled.filter((k) => k === 'a').length, 4, 'requeueAfter works in the new term');
    term2.abort();
    await run2;
    assert.equal(await metric(registry, 'controller_runtime_active_workers', c), 0);
  });
});
