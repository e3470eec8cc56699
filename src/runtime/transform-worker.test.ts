/**
 * The real round trip: TransformPool with real worker threads running transform-worker.ts. No
 * servers, in-process; real time passes only up to the small time boxes used here.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { compileJsonata } from '../api/index.ts';
import { silentLogger, systemClock } from '../observability/index.ts';
import { TransformDepthError, TransformError, TransformTimeoutError } from './errors.ts';
import { runJsonata } from './transform.ts';
import { TransformPool, type TransformPoolMetrics } from './transform-pool.ts';

const replaced: string[] = [];
const metrics: TransformPoolMetrics = {
  workerReplaced: (reason) => replaced.push(reason),
  queueDepth: () => undefined,
};
const pool = new TransformPool({ size: 2, clock: systemClock, logger: silentLogger(), metrics });
after(async () => {
  await pool.close();
});

const limits = { timeoutMs: 2_000, maxDepth: 200 };
/** What goes on the wire. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;
/** The reported expression: `/(a+)+$/` backtracks exponentially on a run of "a" that ends otherwise. */
const EVIL_SOURCE = '{ "externalId": id, "ok": $contains(s, /(a+)+$/) }';
/** 34 × "a": minutes of backtracking in one regex step, far beyond any test timeout. */
const EVIL_EVENT = { id: 'evil', s: `${'a'.repeat(34)}!` };

describe('TransformPool with worker threads', () => {
  it('returns what the in-thread evaluation returns', async () => {
    const source = '{ "externalId": id, "total": $round(amount * 100), "skus": items.sku, "when": $substring(at, 0, 10) }';
    const event = { id: 'deal-7', amount: 12.346, items: [{ sku: 'A' }, { sku: 'B' }], at: '2026-12-02T10:00:00Z' };
    const compiled = compileJsonata(source, 'spec.transform.jsonata');
    assert.ok(compiled.ok);
    const inThread = await runJsonata(compiled.value, event, limits);
    const inPool = await pool.evaluate({ key: 'ns/a', source, data: event, limits });
    // Structured clone keeps what jsonata builds, own properties included (its arrays' enumerable
    // `sequence` flag), so the two are alike beyond what goes on the wire.
    assert.deepEqual(inPool, { ...(inThread as object) });
    assert.deepEqual(plain(inPool), { externalId: 'deal-7', total: 1235, skus: ['A', 'B'], when: '2026-12-02' });
  });

  it('terminates a catastrophically backtracking regex at its deadline, then serves the next task', { timeout: 30_000 }, async () => {
    const before = replaced.length;
    await assert.rejects(pool.evaluate({ key: 'ns/evil', source: EVIL_SOURCE, data: EVIL_EVENT, limits: { timeoutMs: 300, maxDepth: 200 } }), (err: unknown) => {
      assert.ok(err instanceof TransformTimeoutError);
      assert.equal(err.code, 'FERRY_TRANSFORM_TIMEOUT');
      assert.equal(err.timeoutMs, 300);
      assert.ok(err.elapsedMs >= 300, `stopped after ${err.elapsedMs} ms`);
      return true;
    });
    assert.deepEqual(replaced.slice(before), ['timeout'], 'the worker was terminated');
    // The same expression on a harmless event, and another expression, on the replaced worker.
    assert.deepEqual(await pool.evaluate({ key: 'ns/evil', source: EVIL_SOURCE, data: { id: 'ok', s: 'aaa' }, limits }), { externalId: 'ok', ok: true });
    assert.equal(await pool.evaluate({ key: 'ns/a', source: '1 + 1', data: {}, limits }), 2);
  });

  it('keeps serving other tasks while one worker is stuck', { timeout: 30_000 }, async () => {
    const evil = pool.evaluate({ key: 'ns/evil', source: EVIL_SOURCE, data: EVIL_EVENT, limits: { timeoutMs: 1_500, maxDepth: 200 } });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await pool.evaluate({ key: 'ns/good', source: '$ * 2', data: i, limits }));
    assert.deepEqual(answers, [0, 2, 4, 6, 8]);
    await assert.rejects(evil, TransformTimeoutError);
  });

  it('answers every task of a burst with its own value when workers run lines of several', async () => {
    const burst = Array.from({ length: 200 }, (_, i) => pool.evaluate({ key: 'ns/burst', source: '{ "n": n, "double": n * 2 }', data: { n: i }, limits }));
    const answers = (await Promise.all(burst)).map(plain);
    assert.deepEqual(answers, Array.from({ length: 200 }, (_, i) => ({ n: i, double: i * 2 })));
  });

  it('stops loops and recursion inside the worker, without losing it', async () => {
    const before = replaced.length;
    await assert.rejects(pool.evaluate({ key: 'ns/a', source: '($f := function($x) { $f($x + 1) }; $f(1))', data: {}, limits: { timeoutMs: 200, maxDepth: 500 } }), TransformTimeoutError);
    await assert.rejects(pool.evaluate({ key: 'ns/a', source: '($f := function($x) { 1 + $f($x) }; $f(1))', data: {}, limits: { timeoutMs: 2_000, maxDepth: 100 } }), (err: unknown) => {
      assert.ok(err instanceof TransformDepthError);
      assert.equal(err.maxDepth, 100);
      return true;
    });
    assert.deepEqual(replaced.slice(before), [], 'no worker was terminated');
  });

  it('reports expression errors with their jsonata code and position', async () => {
    await assert.rejects(pool.evaluate({ key: 'ns/a', source: '$string(1/0)', data: {}, limits }), (err: unknown) => {
      assert.ok(err instanceof TransformError);
      assert.equal(err.reason, 'expression');
      assert.equal(err.jsonataCode, 'D3001');
      assert.equal(typeof err.position, 'number');
      assert.match(err.message, /^transform expression failed at position \d+: Attempting to invoke string function on Infinity or NaN \(D3001\)$/);
      return true;
    });
    await assert.rejects(pool.evaluate({ key: 'ns/a', source: 'missing', data: {}, limits }), (err: unknown) => err instanceof TransformError && err.reason === 'no-value');
  });

  it('refuses a value with a function inside rather than dropping it', async () => {
    await assert.rejects(pool.evaluate({ key: 'ns/a', source: '{ "id": id, "f": function($x) { $x } }', data: { id: 1 }, limits }), (err: unknown) => {
      assert.ok(err instanceof TransformError);
      assert.equal(err.reason, 'not-a-value');
      assert.match(err.message, /function inside/);
      return true;
    });
  });
});
