import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Deliverer, DeliveryRequest, DeliveryResponse } from '../delivery/index.ts';
import { ManualClock } from '../observability/index.ts';
import { PaginationLoopError, RunBudgetExhaustedError, SourceRequestError, SourceResponseError } from './errors.ts';
import { HttpCaller } from './http-call.ts';
import { readPages, type CollectionSpec, type Page, type PaginationConfig } from './source-reader.ts';

const T0 = 1_700_000_000_000;

interface Reply {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** JSON-encoded unless a string. */
  readonly body: unknown;
  readonly truncated?: boolean;
}

/** A source answering by URL; unknown URLs are a test failure (404 with a loud body). */
class ScriptedSource implements Deliverer {
  readonly requests: DeliveryRequest[] = [];
  private readonly pages: ReadonlyMap<string, Reply>;

  constructor(pages: Readonly<Record<string, Reply>>) {
    this.pages = new Map(Object.entries(pages));
  }

  deliver(request: DeliveryRequest): Promise<DeliveryResponse> {
    this.requests.push(request);
    const reply = this.pages.get(request.url);
    if (!reply) return Promise.resolve({ status: 404, headers: {}, body: `unscripted URL ${request.url}`, truncated: false, durationMs: 1 });
    const body = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    return Promise.resolve({ status: reply.status ?? 200, headers: reply.headers ?? {}, body, truncated: reply.truncated ?? false, durationMs: 1 });
  }

  get urls(): string[] {
    return this.requests.map((r) => r.url);
  }
}

function caller(send: Deliverer): HttpCaller {
  return new HttpCaller({ send, clock: new ManualClock(T0), deadline: T0 + 3_600_000, signal: new AbortController().signal, random: () => 0 });
}

function spec(url: string, pagination: PaginationConfig | undefined, extra: Partial<CollectionSpec> = {}): CollectionSpec {
  return { url, headers: { authorization: 'Bearer t' }, timeoutMs: 5_000, pagination, recordsPath: '/data', ...extra };
}

/** Reads every page; returns the pages read and the error that ended the read, if any. */
async function readAll(s: CollectionSpec, send: Deliverer): Promise<{ pages: Page[]; error: unknown }> {
  const pages: Page[] = [];
  try {
    for await (const page of readPages(s, caller(send))) pages.push(page);
  } catch (error) {
    return { pages, error };
  }
  return { pages, error: undefined };
}

function ids(pages: readonly Page[]): unknown[] {
  return pages.flatMap((p) => p.records.map((r) => (r as { id: unknown }).id));
}

const BASE = 'https://src.test/v1/items';

describe('readPages', () => {
  it('without pagination reads one page, sending the headers and the extra query', async () => {
    const url = `${BASE}?since=2024-01-01T00%3A00%3A00.000Z`;
    const send = new ScriptedSource({ [url]: { body: { data: [{ id: 1 }, { id: 2 }] } } });
    const { pages, error } = await readAll(spec(BASE, undefined, { query: { since: '2024-01-01T00:00:00.000Z' } }), send);
    assert.equal(error, undefined);
    assert.deepEqual(ids(pages), [1, 2]);
    assert.deepEqual(pages.map((p) => [p.index, p.url]), [[1, url]]);
    const req = send.requests[0];
    assert.ok(req);
    assert.equal(req.method, 'GET');
    assert.equal(req.headers?.authorization, 'Bearer t');
    assert.equal(req.headers?.accept, 'application/json');
    assert.equal(req.timeoutMs, 5_000);
  });

  it('reads the whole body as the records with recordsPath ""', async () => {
    const send = new ScriptedSource({ [BASE]: { body: [{ id: 'a' }] } });
    const { pages } = await readAll(spec(BASE, undefined, { recordsPath: '' }), send);
    assert.deepEqual(ids(pages), ['a']);
  });

  describe('pagination types over a three-page source', () => {
    it('Cursor: follows the cursor in the body, keeping the query and size', async () => {
      const p1 = `${BASE}?since=5&limit=2`;
      const p2 = `${p1}&after=c2`;
      const p3 = `${p1}&after=c3`;
      const send = new ScriptedSource({
        [p1]: { body: { data: [{ id: 1 }, { id: 2 }], meta: { next: 'c2' } } },
        [p2]: { body: { data: [{ id: 3 }, { id: 4 }], meta: { next: 'c3' } } },
        [p3]: { body: { data: [{ id: 5 }], meta: { next: null } } },
      });
      const pagination: PaginationConfig = { type: 'cursor', cursorPath: '/meta/next', param: 'after', sizeParam: 'limit', size: 2, start: 1, maxPages: 10 };
      const { pages, error } = await readAll(spec(BASE, pagination, { query: { since: '5' } }), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2, 3, 4, 5]);
      assert.deepEqual(send.urls, [p1, p2, p3]);
      assert.deepEqual(pages.map((p) => p.index), [1, 2, 3]);
      assert.deepEqual(pages.map((p) => p.url), [p1, p2, p3]);
    });

    it('Cursor: a numeric cursor is sent as its JSON text; an empty page ends the read', async () => {
      const send = new ScriptedSource({
        [BASE]: { body: { data: [{ id: 1 }], next: 100 } },
        [`${BASE}?cursor=100`]: { body: { data: [{ id: 2 }], next: 200 } },
        [`${BASE}?cursor=200`]: { body: { data: [], next: 300 } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'cursor', cursorPath: '/next', start: 1, maxPages: 10 }), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2]);
      assert.equal(send.requests.length, 3, 'the empty page is read, and nothing after it');
    });

    it('Page: counts pages from start, stops at a short page', async () => {
      const url = (n: number): string => `${BASE}?per_page=2&page=${n}`;
      const send = new ScriptedSource({
        [url(1)]: { body: { data: [{ id: 1 }, { id: 2 }] } },
        [url(2)]: { body: { data: [{ id: 3 }, { id: 4 }] } },
        [url(3)]: { body: { data: [{ id: 5 }] } },
      });
      const pagination: PaginationConfig = { type: 'page', param: 'page', sizeParam: 'per_page', size: 2, start: 1, maxPages: 10 };
      const { pages, error } = await readAll(spec(BASE, pagination), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2, 3, 4, 5]);
      assert.deepEqual(send.urls, [url(1), url(2), url(3)]);
    });

    it('Page: a zero-based start, and without a size it stops at the first empty page', async () => {
      const url = (n: number): string => `${BASE}?p=${n}`;
      const send = new ScriptedSource({
        [url(0)]: { body: { data: [{ id: 1 }] } },
        [url(1)]: { body: { data: [{ id: 2 }] } },
        [url(2)]: { body: { data: [] } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'page', param: 'p', start: 0, maxPages: 10 }), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2]);
      assert.deepEqual(send.urls, [url(0), url(1), url(2)]);
    });

    it('Offset: advances by the records read', async () => {
      const url = (n: number): string => `${BASE}?limit=2&offset=${n}`;
      const send = new ScriptedSource({
        [url(0)]: { body: { data: [{ id: 1 }, { id: 2 }] } },
        [url(2)]: { body: { data: [{ id: 3 }, { id: 4 }] } },
        [url(4)]: { body: { data: [{ id: 5 }] } },
      });
      const pagination: PaginationConfig = { type: 'offset', param: 'offset', sizeParam: 'limit', size: 2, start: 0, maxPages: 10 };
      const { pages, error } = await readAll(spec(BASE, pagination), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2, 3, 4, 5]);
      assert.deepEqual(send.urls, [url(0), url(2), url(4)]);
    });

    it('LinkHeader: follows rel="next", relative links resolved against the page URL', async () => {
      const send = new ScriptedSource({
        [BASE]: { headers: { link: `<${BASE}?page=2>; rel="next", <${BASE}?page=3>; rel="last"` }, body: { data: [{ id: 1 }] } },
        [`${BASE}?page=2`]: { headers: { link: '<items?page=3>; rel="next"' }, body: { data: [{ id: 2 }] } },
        [`${BASE}?page=3`]: { headers: { link: `<${BASE}?page=2>; rel="prev"` }, body: { data: [{ id: 3 }] } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'linkHeader', start: 1, maxPages: 10 }), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2, 3]);
      assert.deepEqual(send.urls, [BASE, `${BASE}?page=2`, `${BASE}?page=3`]);
    });

    it('NextUrl from the body: absolute and relative URLs', async () => {
      const send = new ScriptedSource({
        [BASE]: { body: { data: [{ id: 1 }], links: { next: 'https://src.test/v1/items?token=b' } } },
        'https://src.test/v1/items?token=b': { body: { data: [{ id: 2 }], links: { next: '/v1/items?token=c' } } },
        'https://src.test/v1/items?token=c': { body: { data: [{ id: 3 }], links: { next: '' } } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'nextUrl', nextUrlPath: '/links/next', start: 1, maxPages: 10 }), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2, 3]);
      assert.deepEqual(send.urls, [BASE, 'https://src.test/v1/items?token=b', 'https://src.test/v1/items?token=c']);
    });

    it('NextUrl from a header (name matched case-insensitively)', async () => {
      const send = new ScriptedSource({
        [BASE]: { headers: { 'x-next-page': `${BASE}?n=2` }, body: { data: [{ id: 1 }] } },
        [`${BASE}?n=2`]: { headers: { 'x-next-page': `${BASE}?n=3` }, body: { data: [{ id: 2 }] } },
        [`${BASE}?n=3`]: { body: { data: [{ id: 3 }] } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'nextUrl', nextUrlHeader: 'X-Next-Page', start: 1, maxPages: 10 }), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2, 3]);
      assert.deepEqual(send.urls, [BASE, `${BASE}?n=2`, `${BASE}?n=3`]);
    });
  });

  describe('a page that is not what the spec declares', () => {
    it('no array at recordsPath: SourceResponseError naming the page number and the pointer', async () => {
      const send = new ScriptedSource({
        [BASE]: { headers: { link: `<${BASE}?page=2>; rel="next"` }, body: { data: [{ id: 1 }] } },
        [`${BASE}?page=2`]: { body: { data: { id: 2 } } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'linkHeader', start: 1, maxPages: 10 }), send);
      assert.equal(pages.length, 1, 'the first page was yielded');
      assert.ok(error instanceof SourceResponseError);
      assert.equal(error.page, 2);
      assert.equal(error.url, `${BASE}?page=2`);
      assert.match(error.message, /source page 2 /);
      assert.match(error.message, /"\/data"/);
      assert.match(error.message, /found object/);
    });

    it('a missing or null array says what was found', async () => {
      for (const [body, found] of [
        [{ items: [] }, 'nothing'],
        [{ data: null }, 'null'],
        [{ data: 'x' }, 'string'],
      ] as const) {
        const { error } = await readAll(spec(BASE, undefined), new ScriptedSource({ [BASE]: { body } }));
        assert.ok(error instanceof SourceResponseError);
        assert.equal(error.page, 1);
        assert.match(error.message, new RegExp(`found ${found}`));
      }
    });

    it('a body that is not JSON', async () => {
      const { error } = await readAll(spec(BASE, undefined), new ScriptedSource({ [BASE]: { body: '<html>oops</html>' } }));
      assert.ok(error instanceof SourceResponseError);
      assert.match(error.message, /source page 1 .*not JSON/);
    });

    it('a truncated body', async () => {
      const { error } = await readAll(spec(BASE, undefined), new ScriptedSource({ [BASE]: { body: { data: [] }, truncated: true } }));
      assert.ok(error instanceof SourceResponseError);
      assert.match(error.message, /larger than the page limit/);
    });

    it('a non-2xx answer is SourceRequestError with the status and page', async () => {
      const send = new ScriptedSource({ [BASE]: { status: 404, body: 'no such collection' } });
      const { error } = await readAll(spec(BASE, undefined), send);
      assert.ok(error instanceof SourceRequestError);
      assert.equal(error.status, 404);
      assert.equal(error.page, 1);
      assert.match(error.message, /HTTP 404: no such collection/);
      assert.equal(send.requests.length, 1);
    });

    it('a relative next URL that cannot be resolved is SourceResponseError', async () => {
      const send = new ScriptedSource({ [BASE]: { body: { data: [{ id: 1 }], next: 'http://[::1' } } });
      const { error } = await readAll(spec(BASE, { type: 'nextUrl', nextUrlPath: '/next', start: 1, maxPages: 10 }), send);
      assert.ok(error instanceof SourceResponseError);
      assert.match(error.message, /is not a URL/);
    });
  });

  describe('loops and budget', () => {
    it('a cursor that repeats is a PaginationLoopError, not an endless read', async () => {
      const send = new ScriptedSource({
        [BASE]: { body: { data: [{ id: 1 }], next: 'c2' } },
        [`${BASE}?cursor=c2`]: { body: { data: [{ id: 2 }], next: 'c2' } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'cursor', cursorPath: '/next', start: 1, maxPages: 100 }), send);
      assert.ok(error instanceof PaginationLoopError);
      assert.match(error.message, /cursor=c2/);
      assert.deepEqual(ids(pages), [1, 2]);
      assert.equal(send.requests.length, 2);
    });

    it('a next URL back to an earlier page is a PaginationLoopError', async () => {
      const send = new ScriptedSource({
        [BASE]: { body: { data: [{ id: 1 }], next: `${BASE}?n=2` } },
        [`${BASE}?n=2`]: { body: { data: [{ id: 2 }], next: BASE } },
      });
      const { error } = await readAll(spec(BASE, { type: 'nextUrl', nextUrlPath: '/next', start: 1, maxPages: 100 }), send);
      assert.ok(error instanceof PaginationLoopError);
      assert.equal(send.requests.length, 2);
    });

    it('a page identical to the previous one (parameter ignored) is a PaginationLoopError', async () => {
      const same = { body: { data: [{ id: 1 }, { id: 2 }] } };
      const send = new ScriptedSource({ [`${BASE}?size=2&page=1`]: same, [`${BASE}?size=2&page=2`]: same, [`${BASE}?size=2&page=3`]: same });
      const { pages, error } = await readAll(spec(BASE, { type: 'page', param: 'page', sizeParam: 'size', size: 2, start: 1, maxPages: 100 }), send);
      assert.ok(error instanceof PaginationLoopError);
      assert.match(error.message, /source page 2 .*identical/);
      assert.equal(pages.length, 1, 'the repeated page is not yielded');
      assert.equal(send.requests.length, 2);
    });

    it('maxPages reached is RunBudgetExhaustedError after exactly maxPages requests', async () => {
      const url = (n: number): string => `${BASE}?page=${n}`;
      const send = new ScriptedSource({
        [url(1)]: { body: { data: [{ id: 1 }] } },
        [url(2)]: { body: { data: [{ id: 2 }] } },
        [url(3)]: { body: { data: [{ id: 3 }] } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'page', param: 'page', start: 1, maxPages: 2 }), send);
      assert.ok(error instanceof RunBudgetExhaustedError);
      assert.match(error.message, /maxPages \(2\)/);
      assert.deepEqual(ids(pages), [1, 2]);
      assert.equal(send.requests.length, 2);
    });

    it('a read that ends on its last allowed page is complete', async () => {
      const send = new ScriptedSource({
        [BASE]: { headers: { link: `<${BASE}?page=2>; rel="next"` }, body: { data: [{ id: 1 }] } },
        [`${BASE}?page=2`]: { body: { data: [{ id: 2 }] } },
      });
      const { pages, error } = await readAll(spec(BASE, { type: 'linkHeader', start: 1, maxPages: 2 }), send);
      assert.equal(error, undefined);
      assert.deepEqual(ids(pages), [1, 2]);
    });
  });
});
