import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, Registry } from '../observability/index.ts';
import { ExponentialRateLimiter, WorkQueue } from './work-queue.ts';

async function metric(registry: Registry, name: string, labels: Record<string, string>, series = name): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return Number.NaN;
  const { values } = await m.get();
  const match = values.find(
    (v) => ((v as { metricName?: string }).metricName ?? name) === series && Object.entries(labels).every(([k, val]) => v.labels[k] === val),
  );
  return match?.value ?? 0;
}

/** Resolves the value of `p` if it settled within the current macrotask turn, else 'pending'. */
async function peek<T>(p: Promise<T>): Promise<T | 'pending'> {
  return await Promise.race([p, new Promise<'pending'>((resolve) => setImmediate(() => { resolve('pending'); }))]);
}

function setup(rateLimiter?: ExponentialRateLimiter): { queue: WorkQueue; clock: ManualClock; registry: Registry } {
  const clock = new ManualClock();
  const registry = new Registry();
  const queue = new WorkQueue({ name: 'test', clock, registry, ...(rateLimiter ? { rateLimiter } : {}) });
  return { queue, clock, registry };
}

describe('WorkQueue', () => {
  it('dedupes a key that is already waiting', async () => {
    const { queue, registry } = setup();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    queue.add('a');
    assert.equal(queue.length, 2);
    assert.equal(await queue.get(), 'a');
    assert.equal(await queue.get(), 'b');
    assert.equal(await peek(queue.get()), 'pending');
    assert.equal(await metric(registry, 'workqueue_adds_total', { name: 'test' }), 2);
  });

  it('never hands one key to two workers; a re-add while processing comes back after done', async () => {
    const { queue } = setup();
    queue.add('a');
    const first = await queue.get();
    assert.equal(first, 'a');

    queue.add('a'); // changed while being processed: dirty
    queue.add('a');
    assert.equal(queue.length, 0, 'not queued while in process');
    const second = queue.get();
    assert.equal(await peek(second), 'pending', 'a second worker does not get the key in process');

    queue.done('a');
    assert.equal(await peek(second), 'a', 'queued again once, after done');
    queue.done('a');
    assert.equal(await peek(queue.get()), 'pending', 'no third delivery');
  });

  it('hands out a key added after a worker started waiting', async () => {
    const { queue } = setup();
    const waiting = queue.get();
    assert.equal(await peek(waiting), 'pending');
    queue.add('x');
    assert.equal(await waiting, 'x');
  });

  it('addAfter makes a key available only once the clock has advanced', async () => {
    const { queue, clock } = setup();
    queue.addAfter('a', 1_000);
    const next = queue.get();
    await clock.advance(999);
    assert.equal(await peek(next), 'pending');
    await clock.advance(1);
    assert.equal(await peek(next), 'a');
  });

  it('addAfter keeps the earliest of two delays for one key', async () => {
    const { queue, clock } = setup();
    queue.addAfter('a', 5_000);
    queue.addAfter('a', 1_000);
    queue.addAfter('a', 3_000);
    await clock.advance(1_000);
    assert.equal(queue.length, 1);
    assert.equal(await queue.get(), 'a');
    queue.done('a');
    await clock.advance(10_000);
    assert.equal(queue.length, 0, 'the later delays were dropped');
  });

  it('addRateLimited backs off 5 ms × 2^n per key, capped, and forget resets it', async () => {
    const { queue, clock, registry } = setup(new ExponentialRateLimiter({ baseDelayMs: 5, maxDelayMs: 40 }));
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = clock.now();
      queue.addRateLimited('k');
      // Advance 1 ms at a time until the key shows up, to measure the delay exactly.
      while (queue.length === 0) await clock.advance(1);
      delays.push(clock.now() - before);
      assert.equal(await queue.get(), 'k');
      queue.done('k');
    }
    assert.deepEqual(delays, [5, 10, 20, 40, 40, 40]);
    assert.equal(queue.numRequeues('k'), 6);
    assert.equal(await metric(registry, 'workqueue_retries_total', { name: 'test' }), 6);

    queue.forget('k');
    assert.equal(queue.numRequeues('k'), 0);
    const before = clock.now();
    queue.addRateLimited('k');
    while (queue.length === 0) await clock.advance(1);
    assert.equal(clock.now() - before, 5, 'back to the base delay after forget');
  });

  it('keeps backoff per key', () => {
    const limiter = new ExponentialRateLimiter();
    assert.equal(limiter.when('a'), 5);
    assert.equal(limiter.when('a'), 10);
    assert.equal(limiter.when('b'), 5);
    // client-go's default cap: 1000 s.
    for (let i = 0; i < 40; i++) limiter.when('c');
    assert.equal(limiter.when('c'), 1_000_000);
  });

  it('shutdown wakes waiting workers, ignores adds and waits for keys in process', async () => {
    const { queue, clock } = setup();
    queue.add('busy');
    assert.equal(await queue.get(), 'busy');
    queue.add('queued');
    queue.addAfter('later', 100);
    const idle = queue.get(); // gets 'queued'
    assert.equal(await idle, 'queued');
    queue.done('queued');
    const waiting = queue.get();

    const drained = queue.shutdown();
    assert.equal(await waiting, undefined, 'a waiting worker is told to stop');
    assert.equal(await peek(drained), 'pending', 'waits for the key in process');
    queue.add('x');
    await clock.advance(1_000);
    assert.equal(queue.length, 0, 'adds and delayed keys are dropped after shutdown');

    queue.done('busy');
    assert.equal(await peek(drained), undefined);
    assert.equal(await queue.get(), undefined);
  });

  it('reopens after a drained shutdown: new adds are handed out, nothing from before survives', async () => {
    const { queue, clock } = setup();
    queue.add('old');
    queue.addAfter('old-later', 100);
    await queue.shutdown();
    queue.add('while-closed');
    assert.equal(queue.length, 0);

    queue.reopen();
    assert.equal(queue.isShuttingDown, false);
    await clock.advance(1_000);
    assert.equal(queue.length, 0, 'queued, delayed and closed-time adds were dropped, not replayed');
    queue.add('new');
    assert.equal(await queue.get(), 'new');
    queue.add('new'); // changed while in process: dirty handling works again
    queue.done('new');
    assert.equal(await queue.get(), 'new');
    queue.done('new');
    queue.addAfter('soon', 50);
    await clock.advance(50);
    assert.equal(await queue.get(), 'soon', 'delays work again');
    queue.done('soon');
  });

  it('refuses to reopen while keys from the previous run are still in process', async () => {
    const { queue } = setup();
    queue.add('busy');
    assert.equal(await queue.get(), 'busy');
    const drained = queue.shutdown();
    assert.throws(() => {
      queue.reopen();
    }, /still in process/);
    queue.done('busy');
    await drained;
    queue.reopen();
    queue.add('next');
    assert.equal(await queue.get(), 'next');
  });

  it('records depth, queue and work durations on the clock', async () => {
    const { queue, clock, registry } = setup();
    queue.add('a');
    queue.add('b');
    assert.equal(await metric(registry, 'workqueue_depth', { name: 'test' }), 2);
    await clock.advance(2_000);
    assert.equal(await queue.get(), 'a');
    assert.equal(await metric(registry, 'workqueue_depth', { name: 'test' }), 1);
    await clock.advance(500);
    queue.done('a');
    const queueSum = await metric(registry, 'workqueue_queue_duration_seconds', { name: 'test' }, 'workqueue_queue_duration_seconds_sum');
    const workSum = await metric(registry, 'workqueue_work_duration_seconds', { name: 'test' }, 'workqueue_work_duration_seconds_sum');
    assert.equal(queueSum, 2);
    assert.equal(workSum, 0.5);
  });

  it('two queues share one registry under different names', async () => {
    const clock = new ManualClock();
    const registry = new Registry();
    const a = new WorkQueue({ name: 'a', clock, registry });
    const b = new WorkQueue({ name: 'b', clock, registry });
    a.add('x');
    b.add('x');
    b.add('y');
    assert.equal(await metric(registry, 'workqueue_depth', { name: 'a' }), 1);
    assert.equal(await metric(registry, 'workqueue_depth', { name: 'b' }), 2);
  });
});
