import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileTemplate } from '../api/index.ts';
import type { Deliverer, DeliveryRequest, DeliveryResponse } from '../delivery/index.ts';
import { ManualClock } from '../observability/index.ts';
import { RunBudgetExhaustedError, TargetUnavailableError } from './errors.ts';
import { HttpCaller, SYNC_MAX_ATTEMPTS } from './http-call.ts';
import { contentHash } from './records.ts';
import { TargetWriter, writeKey, type TargetConfig, type WriteItem, type WriteResult } from './target-writer.ts';

const T0 = 1_700_000_000_000;

interface Reply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** JSON-encoded unless a string. */
  readonly body?: unknown;
}

class ScriptedTarget implements Deliverer {
  readonly requests: DeliveryRequest[] = [];
  private readonly script: (request: DeliveryRequest) => Reply;

  constructor(script: (request: DeliveryRequest) => Reply) {
    this.script = script;
  }

  deliver(request: DeliveryRequest): Promise<DeliveryResponse> {
    this.requests.push(request);
    const reply = this.script(request);
    const body = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    return Promise.resolve({ status: reply.status, headers: reply.headers ?? {}, body, truncated: false, durationMs: 1 });
  }

  /** The `records` array of each batch request, as ids. */
  get batches(): string[][] {
    return this.requests.map((r) => {
      const value = r.body?.value as { records?: { id: string }[] } | undefined;
      return (value?.records ?? []).map((b) => b.id);
    });
  }
}

const BASE_CONFIG: TargetConfig = {
  url: compileTemplate('https://tgt.test/v1/accounts/{{/id}}'),
  deleteUrl: compileTemplate('https://tgt.test/v1/accounts/{{/id}}?hard=true'),
  method: 'PUT',
  encoding: 'json',
  headers: { 'x-api-key': 'k1' },
  timeoutMs: 4_000,
  successCodes: [200, 201, 204],
  batch: { size: 1, itemsPath: '/records', resultsPath: '/results', itemStatusPath: '/status' },
  mode: 'upsert',
  scope: 'revops/accounts',
};

const BATCH_CONFIG: TargetConfig = {
  ...BASE_CONFIG,
  url: compileTemplate('https://tgt.test/v1/accounts:batch'),
  method: 'POST',
  batch: { ...BASE_CONFIG.batch, size: 10 },
};

function setup(script: (request: DeliveryRequest) => Reply, config: Partial<TargetConfig> = {}): { clock: ManualClock; target: ScriptedTarget; writer: TargetWriter } {
  const clock = new ManualClock(T0);
  const target = new ScriptedTarget(script);
  const caller = new HttpCaller({ send: target, clock, deadline: T0 + 3_600_000, signal: new AbortController().signal, random: () => 0 });
  return { clock, target, writer: new TargetWriter({ ...BASE_CONFIG, ...config }, caller) };
}

function item(id: string, extra: Record<string, unknown> = {}): WriteItem {
  const body = { id, name: `name-${id}`, ...extra };
  return { key: id, body, hash: contentHash(body), source: { id } };
}

/** Advances the clock until `promise` settles. */
async function drive<T>(promise: Promise<T>, clock: ManualClock): Promise<T> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; !settled && i < 10_000; i++) await clock.advance(10);
  assert.ok(settled, 'settles');
  return promise;
}

function failed(result: WriteResult | undefined): WriteResult & { ok: false } {
  assert.ok(result && !result.ok, `expected a failed result, got ${JSON.stringify(result)}`);
  return result;
}

describe('writeKey', () => {
  it('is sync:<scope>:<key>:<hash>', () => {
    assert.equal(writeKey('ns/name', 'acc-1', 'h4sh'), 'sync:ns/name:acc-1:h4sh');
  });

  it('differs by scope, key and content hash', () => {
    const k = writeKey('ns/a', 'k', 'h');
    assert.notEqual(writeKey('ns/b', 'k', 'h'), k);
    assert.notEqual(writeKey('ns/a', 'k2', 'h'), k);
    assert.notEqual(writeKey('ns/a', 'k', 'h2'), k);
  });

  it('hashes a key longer than 255 characters into a short stable one', () => {
    const long = writeKey('ns/a', 'x'.repeat(300), 'h');
    assert.ok(long.length <= 255);
    assert.match(long, /^sync:[A-Za-z0-9_-]{43}$/);
    assert.equal(writeKey('ns/a', 'x'.repeat(300), 'h'), long);
    assert.notEqual(writeKey('ns/a', 'x'.repeat(300), 'h2'), long);
  });
});

describe('TargetWriter.write', () => {
  it('renders the URL from the source record and sends the body, headers and idempotency key', async () => {
    const { target, writer } = setup(() => ({ status: 201 }));
    const it1 = { ...item('acc/1 ü'), source: { id: 'acc/1 ü' } };
    assert.deepEqual(await writer.write(it1), { ok: true, status: 201 });
    assert.equal(target.requests.length, 1);
    const req = target.requests[0];
    assert.ok(req);
    assert.equal(req.url, 'https://tgt.test/v1/accounts/acc%2F1%20%C3%BC');
    assert.equal(req.method, 'PUT');
    assert.deepEqual(req.body, { encoding: 'json', value: it1.body });
    assert.equal(req.idempotencyKey, `sync:revops/accounts:acc/1 ü:${it1.hash}`);
    assert.deepEqual(req.headers, { 'x-api-key': 'k1' });
    assert.equal(req.timeoutMs, 4_000);
  });

  it('the same record with changed content gets a new idempotency key', async () => {
    const { target, writer } = setup(() => ({ status: 200 }));
    await writer.write(item('a'));
    await writer.write(item('a', { name: 'changed' }));
    await writer.write(item('a'));
    const keys = target.requests.map((r) => r.idempotencyKey);
    assert.notEqual(keys[0], keys[1]);
    assert.equal(keys[0], keys[2]);
  });

  it('a key salt (repair) gives a key different from the first write, stable for the same salt', async () => {
    const { target, writer } = setup(() => ({ status: 200 }));
    const base = item('a');
    await writer.write(base);
    await writer.write({ ...base, keySalt: 'repair-1' });
    await writer.write({ ...base, keySalt: 'repair-1' });
    const keys = target.requests.map((r) => r.idempotencyKey);
    assert.equal(keys[0], `sync:revops/accounts:a:${base.hash}`);
    assert.notEqual(keys[1], keys[0]);
    assert.equal(keys[1], keys[2]);
  });

  it('a record whose URL cannot be rendered is rejected without a request', async () => {
    const { target, writer } = setup(() => ({ status: 200 }));
    const missing = failed(await writer.write({ ...item('a'), source: { other: 1 } }));
    assert.equal(missing.reason, 'rejected');
    assert.match(missing.error, /^target\.url: /);
    const empty = failed(await writer.write({ ...item('a'), source: { id: '' } }));
    assert.equal(empty.reason, 'rejected');
    assert.equal(target.requests.length, 0);
  });

  it('a 4xx is a rejected record with its status and body, never thrown', async () => {
    const { writer } = setup(() => ({ status: 422, body: { error: 'email invalid' } }));
    const r = failed(await writer.write(item('a')));
    assert.equal(r.reason, 'rejected');
    assert.equal(r.status, 422);
    assert.equal(r.error, 'HTTP 422');
    assert.match(r.body ?? '', /email invalid/);
  });

  it('a 5xx on every attempt is an exhausted record', async () => {
    const { clock, target, writer } = setup(() => ({ status: 503 }));
    const r = failed(await drive(writer.write(item('a')), clock));
    assert.equal(r.reason, 'exhausted');
    assert.equal(r.status, 503);
    assert.equal(target.requests.length, SYNC_MAX_ATTEMPTS);
    assert.ok(target.requests.every((q) => q.idempotencyKey === target.requests[0]?.idempotencyKey), 'every attempt carries the same key');
  });

  it('credentials refused are thrown: target-wide, not a record failure', async () => {
    const { writer } = setup(() => ({ status: 401 }));
    await assert.rejects(writer.write(item('a')), TargetUnavailableError);
  });

  it('a Retry-After past the deadline is thrown, not returned', async () => {
    const clock = new ManualClock(T0);
    const target = new ScriptedTarget(() => ({ status: 429, headers: { 'retry-after': '120' } }));
    const caller = new HttpCaller({ send: target, clock, deadline: T0 + 60_000, signal: new AbortController().signal, random: () => 0 });
    await assert.rejects(new TargetWriter(BASE_CONFIG, caller).write(item('a')), RunBudgetExhaustedError);
  });

  describe('modes', () => {
    it('update: 404 is skipped as absent; upsert: 404 is rejected', async () => {
      assert.deepEqual(await setup(() => ({ status: 404 }), { mode: 'update' }).writer.write(item('a')), { ok: true, status: 404, skipped: 'absent' });
      assert.equal(failed(await setup(() => ({ status: 404 })).writer.write(item('a'))).status, 404);
    });

    it('insert: 409 is skipped as existing; upsert: 409 is rejected', async () => {
      assert.deepEqual(await setup(() => ({ status: 409 }), { mode: 'insert' }).writer.write(item('a')), { ok: true, status: 409, skipped: 'exists' });
      assert.equal(failed(await setup(() => ({ status: 409 })).writer.write(item('a'))).status, 409);
    });

    it('a status outside successCodes is rejected even when 2xx', async () => {
      const r = failed(await setup(() => ({ status: 202 })).writer.write(item('a')));
      assert.equal(r.status, 202);
    });
  });
});

describe('TargetWriter.delete', () => {
  it('sends DELETE to the delete URL with a delete idempotency key salted by the run; 404 is success', async () => {
    const { target, writer } = setup(() => ({ status: 404 }));
    assert.deepEqual(await writer.delete('a/b', { id: 'a/b' }, 'run-1'), { ok: true, status: 404 });
    const req = target.requests[0];
    assert.ok(req);
    assert.equal(req.method, 'DELETE');
    assert.equal(req.url, 'https://tgt.test/v1/accounts/a%2Fb?hard=true');
    assert.equal(req.body, undefined);
    assert.equal(req.idempotencyKey, 'sync:revops/accounts:a/b:delete:run-1');
  });

  it('a delete in a later run (a re-created record) gets a new key', async () => {
    const { target, writer } = setup(() => ({ status: 204 }));
    await writer.delete('a', { id: 'a' }, 'run-1');
    await writer.delete('a', { id: 'a' }, 'run-2');
    assert.notEqual(target.requests[0]?.idempotencyKey, target.requests[1]?.idempotencyKey);
  });

  it('a 204 is success and a 422 is rejected', async () => {
    assert.deepEqual(await setup(() => ({ status: 204 })).writer.delete('a', { id: 'a' }, 'r'), { ok: true, status: 204 });
    assert.equal(failed(await setup(() => ({ status: 422 })).writer.delete('a', { id: 'a' }, 'r')).status, 422);
  });
});

describe('TargetWriter.writeBatch', () => {
  /** Accepts a batch unless it holds a record with `bad: true`, which refuses the whole batch. */
  function refusesBad(request: DeliveryRequest): Reply {
    const records = (request.body?.value as { records: { id: string; bad?: boolean }[] }).records;
    if (records.some((r) => r.bad === true)) return { status: 400, body: { error: 'batch invalid' } };
    return { status: 200, body: { results: records.map(() => ({ status: 200 })) } };
  }

  it('sends one request with the records at itemsPath, judged per item from resultsPath', async () => {
    const { target, writer } = setup(
      () => ({
        status: 200,
        body: { results: [{ status: 201 }, { status: 422, error: 'email invalid' }, { status: 200 }] },
      }),
      BATCH_CONFIG,
    );
    const items = [item('a'), item('b'), item('c')];
    const results = await writer.writeBatch(items);
    assert.equal(target.requests.length, 1);
    const req = target.requests[0];
    assert.ok(req);
    assert.equal(req.url, 'https://tgt.test/v1/accounts:batch');
    assert.equal(req.method, 'POST');
    assert.deepEqual(req.body, { encoding: 'json', value: { records: items.map((i) => i.body) } });
    assert.match(req.idempotencyKey ?? '', /^sync:revops\/accounts:batch:[A-Za-z0-9_-]+$/);
    assert.equal(results.length, 3);
    assert.deepEqual(results[0], { ok: true, status: 201 });
    assert.deepEqual(results[2], { ok: true, status: 200 });
    const bad = failed(results[1]);
    assert.equal(bad.reason, 'rejected');
    assert.equal(bad.status, 422);
    assert.equal(bad.error, 'batch item 1: email invalid');
    assert.match(bad.body ?? '', /email invalid/);
  });

  it('reads item statuses at a nested itemStatusPath; a missing result is a failed item', async () => {
    const { writer } = setup(() => ({ status: 200, body: { data: { items: [{ meta: { code: 200 } }] } } }), {
      ...BATCH_CONFIG,
      batch: { size: 10, itemsPath: '', resultsPath: '/data/items', itemStatusPath: '/meta/code' },
    });
    const results = await writer.writeBatch([item('a'), item('b')]);
    assert.deepEqual(results[0], { ok: true, status: 200 });
    const missing = failed(results[1]);
    assert.equal(missing.status, undefined);
    assert.match(missing.error, /batch item 1: status null/);
  });

  it('itemsPath "" sends the records as the body itself', async () => {
    const { target, writer } = setup(() => ({ status: 204 }), { ...BATCH_CONFIG, batch: { ...BATCH_CONFIG.batch, itemsPath: '' } });
    const items = [item('a'), item('b')];
    assert.deepEqual(await writer.writeBatch(items), [
      { ok: true, status: 204 },
      { ok: true, status: 204 },
    ]);
    assert.deepEqual(target.requests[0]?.body?.value, items.map((i) => i.body));
  });

  it('a 2xx without a results array accepts every item', async () => {
    const { writer } = setup(() => ({ status: 200, body: 'OK' }), BATCH_CONFIG);
    assert.deepEqual(await writer.writeBatch([item('a'), item('b')]), [
      { ok: true, status: 200 },
      { ok: true, status: 200 },
    ]);
  });

  it('a batch refused with 400 is split in halves until only the bad item fails; succeeded halves are never resent', async () => {
    const { target, writer } = setup(refusesBad, BATCH_CONFIG);
    const items = [item('a'), item('b'), item('c', { bad: true }), item('d')];
    const results = await writer.writeBatch(items);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, true, false, true],
    );
    const bad = failed(results[2]);
    assert.equal(bad.status, 400);
    assert.equal(bad.reason, 'rejected');
    // [a b c d] refused → [a b] ok, [c d] refused → [c] refused, [d] ok.
    assert.deepEqual(target.batches, [['a', 'b', 'c', 'd'], ['a', 'b'], ['c', 'd'], ['c'], ['d']]);
    assert.equal(target.requests.length, 5);
  });

  it('isolates several bad items in an odd-sized batch', async () => {
    const { target, writer } = setup(refusesBad, BATCH_CONFIG);
    const items = [item('a', { bad: true }), item('b'), item('c'), item('d'), item('e', { bad: true })];
    const results = await writer.writeBatch(items);
    assert.deepEqual(
      results.map((r) => r.ok),
      [false, true, true, true, false],
    );
    // Every good item is accepted exactly once.
    const accepted = target.batches.filter((b) => !b.includes('a') && !b.includes('e')).flat();
    assert.deepEqual(accepted.sort(), ['b', 'c', 'd']);
  });

  it('a batch that failed every attempt (5xx) fails every item as exhausted, without splitting', async () => {
    const { clock, target, writer } = setup(() => ({ status: 500 }), BATCH_CONFIG);
    const results = await drive(writer.writeBatch([item('a'), item('b'), item('c')]), clock);
    assert.equal(results.length, 3);
    for (const r of results) assert.equal(failed(r).reason, 'exhausted');
    assert.equal(target.requests.length, SYNC_MAX_ATTEMPTS);
    assert.ok(target.batches.every((b) => b.length === 3));
  });

  it('credentials refused on a batch are thrown', async () => {
    const { writer } = setup(() => ({ status: 403 }), BATCH_CONFIG);
    await assert.rejects(writer.writeBatch([item('a'), item('b')]), TargetUnavailableError);
  });

  it('the batch idempotency key follows the items, their content and their salt', async () => {
    const { target, writer } = setup(() => ({ status: 200 }), BATCH_CONFIG);
    await writer.writeBatch([item('a'), item('b')]);
    await writer.writeBatch([item('a'), item('b')]);
    await writer.writeBatch([item('a'), item('b', { name: 'changed' })]);
    await writer.writeBatch([item('b'), item('a')]);
    await writer.writeBatch([item('a'), { ...item('b'), keySalt: 'repair' }]);
    const keys = target.requests.map((r) => r.idempotencyKey);
    assert.equal(keys[0], keys[1]);
    assert.notEqual(keys[0], keys[2]);
    assert.notEqual(keys[0], keys[3]);
    assert.notEqual(keys[0], keys[4]);
  });

  it(
    'mode rules apply per batch item too: update 404 → skipped absent, insert 409 → skipped exists',
    async () => {
      const update = setup(() => ({ status: 200, body: { results: [{ status: 200 }, { status: 404 }] } }), { ...BATCH_CONFIG, mode: 'update' });
      assert.deepEqual((await update.writer.writeBatch([item('a'), item('b')]))[1], { ok: true, status: 404, skipped: 'absent' });
      const insert = setup(() => ({ status: 200, body: { results: [{ status: 409 }, { status: 201 }] } }), { ...BATCH_CONFIG, mode: 'insert' });
      assert.deepEqual((await insert.writer.writeBatch([item('a'), item('b')]))[0], { ok: true, status: 409, skipped: 'exists' });
    },
  );

  it('with batch.size 1 a single item is written per record, to its own URL', async () => {
    const { target, writer } = setup(() => ({ status: 200 }));
    const results = await writer.writeBatch([item('a')]);
    assert.deepEqual(results, [{ ok: true, status: 200 }]);
    assert.equal(target.requests[0]?.url, 'https://tgt.test/v1/accounts/a');
    assert.equal(target.requests[0]?.method, 'PUT');
    assert.equal(writer.batchSize, 1);
  });
});
