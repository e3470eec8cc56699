import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileJsonata, compileMapping, type CompiledJsonata, type CompiledMapping } from '../api/index.ts';
import { MappingError, TransformDepthError, TransformError, TransformTimeoutError } from './errors.ts';
import { applyMapping, runJsonata, type TransformClock, type TransformLimits } from './transform.ts';

function mapping(spec: Record<string, string>): CompiledMapping {
  const compiled = compileMapping(spec, 'spec.transform.mapping');
  assert.ok(compiled.ok, compiled.ok ? '' : compiled.message);
  return compiled.value;
}

function expression(source: string): CompiledJsonata {
  const compiled = compileJsonata(source, 'spec.transform.jsonata');
  assert.ok(compiled.ok, compiled.ok ? '' : compiled.message);
  return compiled.value;
}

/** A clock that stands still: only the depth limit can stop an expression. */
const frozen: TransformClock = { now: () => 0 };

/** A clock that advances `step` ms every time it is read, i.e. once per evaluation step. */
function ticking(step = 1): TransformClock & { readonly reads: () => number } {
  let t = 0;
  let reads = 0;
  return {
    now: () => {
      reads++;
      t += step;
      return t;
    },
    reads: () => reads,
  };
}

/** jsonata builds null-prototype objects and tags arrays; compare what goes on the wire. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

const limits: TransformLimits = { timeoutMs: 1_000, maxDepth: 500 };

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

describe('applyMapping', () => {
  const event = deepFreeze({
    id: 'deal-7',
    amount: 1250,
    customer: { id: 'c-1', name: 'Acme', tags: ['gold', 'eu'] },
    items: [{ sku: 'A' }, { sku: 'B' }],
    note: null,
  });

  it('copies fields into flat and nested outputs, in spec order', () => {
    const out = applyMapping(mapping({ externalId: '/id', '/billing/total': '/amount', '/billing/customer/ref': '/customer/id', customerName: '/customer/name' }), event);
    assert.deepEqual(out, { externalId: 'deal-7', billing: { total: 1250, customer: { ref: 'c-1' } }, customerName: 'Acme' });
    assert.deepEqual(Object.keys(out), ['externalId', 'billing', 'customerName']);
  });

  it('addresses array elements by index', () => {
    const out = applyMapping(mapping({ first: '/items/0/sku', second: '/items/1', tag: '/customer/tags/1', tags: '/customer/tags' }), event);
    assert.deepEqual(out, { first: 'A', second: { sku: 'B' }, tag: 'eu', tags: ['gold', 'eu'] });
  });

  it('omits keys whose pointer matches nothing, and keeps nulls', () => {
    const out = applyMapping(
      mapping({
        note: '/note',
        missing: '/nope',
        deep: '/customer/address/city',
        pastEnd: '/items/2',
        leadingZero: '/items/01',
        dash: '/items/-',
        length: '/items/length',
        intoString: '/id/0',
        '/nested/missing': '/nope',
      }),
      event,
    );
    assert.deepEqual(out, { note: null });
    assert.ok(!('missing' in out));
  });

  it('maps the whole event with the empty pointer, and works on non-object events', () => {
    assert.deepEqual(applyMapping(mapping({ event: '' }), [1, 2]), { event: [1, 2] });
    assert.deepEqual(applyMapping(mapping({ x: '/a' }), 'text'), {});
    assert.deepEqual(applyMapping(mapping({ x: '/a' }), null), {});
  });

  it('unescapes ~1 and ~0 in pointers and output paths', () => {
    const out = applyMapping(mapping({ '/out~1put/ti~0lde': '/a~1b/c~0d' }), { 'a/b': { 'c~d': 42 } });
    assert.deepEqual(out, { 'out/put': { 'ti~lde': 42 } });
  });

  it('never reads inherited properties', () => {
    const out = applyMapping(mapping({ a: '/constructor', b: '/__proto__', c: '/toString', d: '/customer/constructor/name' }), event);
    assert.deepEqual(out, {});
  });

  it('reads an own __proto__ field like any other', () => {
    const parsed = JSON.parse('{"__proto__": {"x": 1}}') as unknown;
    assert.deepEqual(applyMapping(mapping({ x: '/__proto__/x' }), parsed), { x: 1 });
  });

  it('writes constructor and prototype as ordinary fields, polluting nothing', () => {
    const out = applyMapping(mapping({ '/constructor/prototype/polluted': '/id', '/prototype': '/amount' }), event);
    assert.deepEqual(Object.entries(out), [
      ['constructor', { prototype: { polluted: 'deal-7' } }],
      ['prototype', 1250],
    ]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
  });

  it('refuses to write __proto__', () => {
    for (const to of ['/__proto__/polluted', '/a/__proto__']) {
      assert.throws(
        () => applyMapping(mapping({ [to]: '/id' }), event),
        (err: unknown) => err instanceof MappingError && err.reason === 'unsafe-key' && !err.retryable,
      );
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('refuses colliding output paths, but only when both sides have a value', () => {
    const inside = mapping({ '/c': '/customer', '/c/ref': '/id' });
    assert.throws(
      () => applyMapping(inside, event),
      (err: unknown) => err instanceof MappingError && err.reason === 'conflict' && err.path === '/c/ref',
    );
    // The event's customer object was not written into.
    assert.equal((event.customer as Record<string, unknown>).ref, undefined);
    assert.deepEqual(applyMapping(inside, { id: 'x' }), { c: { ref: 'x' } });

    const twice = mapping({ a: '/id', '/a': '/amount' });
    assert.throws(
      () => applyMapping(twice, event),
      (err: unknown) => err instanceof MappingError && err.reason === 'conflict' && err.path === '/a',
    );
    const overObject = mapping({ '/a/b': '/id', a: '/amount' });
    assert.throws(() => applyMapping(overObject, event), MappingError);
  });

  it('never modifies the event', () => {
    const mutable = { customer: { id: 'c-1', tags: ['x'] }, id: 'd' };
    const before = structuredClone(mutable);
    const out = applyMapping(mapping({ '/customer/id': '/id', '/customer/tags': '/customer/tags', whole: '/customer' }), mutable);
    assert.deepEqual(mutable, before);
    assert.deepEqual(out, { customer: { id: 'd', tags: ['x'] }, whole: { id: 'c-1', tags: ['x'] } });
    // A frozen event is fine too: nothing is ever written into it.
    assert.doesNotThrow(() => applyMapping(mapping({ '/customer/id': '/id', whole: '/customer' }), event));
  });
});

describe('runJsonata', () => {
  it('evaluates an expression against the event', async () => {
    const compiled = expression('{ "externalId": id, "total": $round(amount * 100), "skus": items.sku }');
    const event = { id: 'deal-7', amount: 12.346, items: [{ sku: 'A' }, { sku: 'B' }] };
    assert.deepEqual(plain(await runJsonata(compiled, event, limits)), { externalId: 'deal-7', total: 1235, skus: ['A', 'B'] });
    assert.deepEqual(event, { id: 'deal-7', amount: 12.346, items: [{ sku: 'A' }, { sku: 'B' }] });
  });

  it('treats no value as an error', async () => {
    await assert.rejects(runJsonata(expression('missing.field'), { id: 1 }, limits), (err: unknown) => {
      assert.ok(err instanceof TransformError);
      assert.equal(err.reason, 'no-value');
      assert.equal(err.code, 'FERRY_TRANSFORM_FAILED');
      assert.equal(err.retryable, false);
      assert.match(err.message, /produced no value/);
      return true;
    });
  });

  it('keeps falsy values that are values', async () => {
    assert.equal(await runJsonata(expression('flag'), { flag: false }, limits), false);
    assert.equal(await runJsonata(expression('n'), { n: 0 }, limits), 0);
    assert.equal(await runJsonata(expression('v'), { v: null }, limits), null);
  });

  it('refuses a function as the result', async () => {
    await assert.rejects(runJsonata(expression('function($x) { $x }'), {}, limits), (err: unknown) => err instanceof TransformError && err.reason === 'not-a-value');
    await assert.rejects(runJsonata(expression('$sum'), {}, limits), (err: unknown) => err instanceof TransformError && err.reason === 'not-a-value');
  });

  it('translates runtime errors, keeping jsonata code and position', async () => {
    await assert.rejects(runJsonata(expression('$string(1/0)'), {}, limits), (err: unknown) => {
      assert.ok(err instanceof TransformError);
      assert.equal(err.reason, 'expression');
      assert.equal(err.jsonataCode, 'D3001');
      assert.equal(typeof err.position, 'number');
      assert.match(err.message, /^transform expression failed at position \d+: Attempting to invoke string function on Infinity or NaN \(D3001\)$/);
      assert.ok(err.cause !== undefined);
      return true;
    });
    await assert.rejects(runJsonata(expression('name + 1'), { name: 'x' }, limits), (err: unknown) => err instanceof TransformError && err.jsonataCode === 'T2001');
  });

  it('stops unbounded recursion at the depth limit', async () => {
    const compiled = expression('($f := function($x) { 1 + $f($x) }; $f(1))');
    await assert.rejects(runJsonata(compiled, {}, { timeoutMs: 1_000, maxDepth: 200 }, frozen), (err: unknown) => {
      assert.ok(err instanceof TransformDepthError);
      assert.equal(err.code, 'FERRY_TRANSFORM_DEPTH');
      assert.equal(err.maxDepth, 200);
      assert.equal(err.retryable, false);
      return true;
    });
  });

  it('reports the guard stop even when $eval wraps the error', async () => {
    const compiled = expression('$eval("($f := function($x) { 1 + $f($x) }; $f(1))")');
    await assert.rejects(runJsonata(compiled, {}, { timeoutMs: 1_000, maxDepth: 200 }, frozen), TransformDepthError);
  });

  it('stops an endless loop with the time box', async () => {
    // Tail recursion runs as a loop at constant depth: only the time box can stop it.
    const compiled = expression('($f := function($x) { $f($x + 1) }; $f(1))');
    const clock = ticking(1);
    await assert.rejects(runJsonata(compiled, {}, { timeoutMs: 500, maxDepth: 10_000 }, clock), (err: unknown) => {
      assert.ok(err instanceof TransformTimeoutError);
      assert.equal(err.code, 'FERRY_TRANSFORM_TIMEOUT');
      assert.equal(err.timeoutMs, 500);
      assert.ok(err.elapsedMs > 500);
      assert.equal(err.retryable, false);
      return true;
    });
    // One read to start, one per step: stopped right after the budget ran out.
    assert.equal(clock.reads(), 502);
  });

  it('stops a long iteration over a big range with the time box', async () => {
    const compiled = expression('$sum([1..10000000].($ * 2))');
    await assert.rejects(runJsonata(compiled, {}, { timeoutMs: 1_000, maxDepth: 500 }, ticking(1)), TransformTimeoutError);
  });

  it('leaves the compiled expression working after a stop', async () => {
    const loop = expression('($f := function($n) { $n <= 0 ? "done" : $f($n - 1) }; $f(n))');
    await assert.rejects(runJsonata(loop, { n: 1e9 }, { timeoutMs: 200, maxDepth: 500 }, ticking(1)), TransformTimeoutError);
    assert.equal(await runJsonata(loop, { n: 3 }, { timeoutMs: 200, maxDepth: 500 }, ticking(1)), 'done');

    const recursion = expression('($f := function($n) { $n <= 0 ? 0 : 1 + $f($n - 1) }; $f(n))');
    await assert.rejects(runJsonata(recursion, { n: 10_000 }, { timeoutMs: 1_000, maxDepth: 100 }, frozen), TransformDepthError);
    assert.equal(await runJsonata(recursion, { n: 5 }, { timeoutMs: 1_000, maxDepth: 100 }, frozen), 5);
    // The expression still evaluates normally outside runJsonata: the hooks find no guard.
    assert.equal(await recursion.expression.evaluate({ n: 2 }), 2);
  });

  it('keeps concurrent evaluations of one expression apart', async () => {
    const loop = expression('($f := function($n) { $n <= 0 ? "done" : $f($n - 1) }; $f(n))');
    const [stopped, finished] = await Promise.allSettled([
      runJsonata(loop, { n: 1e9 }, { timeoutMs: 300, maxDepth: 500 }, ticking(1)),
      runJsonata(loop, { n: 50 }, { timeoutMs: 300, maxDepth: 500 }, frozen),
    ]);
    assert.equal(stopped.status, 'rejected');
    assert.ok(stopped.reason instanceof TransformTimeoutError);
    assert.deepEqual(finished, { status: 'fulfilled', value: 'done' });
  });

  it('stops branches still running after another branch failed', async () => {
    // Array items are evaluated concurrently; the first fails at once, the second would loop.
    const compiled = expression('[($f := function($x) { $f($x + 1) }; $f(1)), $string(1/0)]');
    const clock = ticking(1);
    await assert.rejects(runJsonata(compiled, {}, { timeoutMs: 100_000, maxDepth: 500 }, clock), (err: unknown) => err instanceof TransformError && err.jsonataCode === 'D3001');
    const readsAtFailure = clock.reads();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(clock.reads() - readsAtFailure <= 1, `the looping branch kept running: ${clock.reads() - readsAtFailure} more steps`);
  });

  it('refuses limits that would disable the guard', async () => {
    const compiled = expression('1');
    await assert.rejects(runJsonata(compiled, {}, { timeoutMs: Number.NaN, maxDepth: 10 }), RangeError);
    await assert.rejects(runJsonata(compiled, {}, { timeoutMs: 100, maxDepth: 0 }), RangeError);
  });

  it('measures real time by default', async () => {
    assert.equal(await runJsonata(expression('1 + 1'), {}, limits), 2);
  });
});
