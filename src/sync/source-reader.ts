/**
 * Reads a paged collection (the source, or the target's lookup list) page by page, for the five
 * pagination types: Cursor, Page, Offset, LinkHeader (RFC 8288) and NextUrl.
 *
 * Guarantees:
 * - A page that is not JSON, or has no array at `recordsPath`, fails the read with the page
 *   number, its URL and the pointer (`SourceResponseError`): a changed API is loud, not empty.
 * - Every loop guards itself: a cursor or next URL already followed, or a page byte-identical to
 *   the previous one, is a `PaginationLoopError` naming the URL — never an endless run.
 * - `maxPages` bounds one read; reaching it ends the run `Partial` (the next run goes on).
 */
import { PaginationLoopError, RunBudgetExhaustedError, SourceRequestError, SourceResponseError } from './errors.ts';
import { HttpCallFailed, type HttpCaller } from './http-call.ts';
import { nextLink } from './link-header.ts';
import { pointer, valueAt } from './records.ts';

export interface PaginationConfig {
  readonly type: 'cursor' | 'page' | 'offset' | 'linkHeader' | 'nextUrl';
  readonly cursorPath?: string | undefined;
  readonly param?: string | undefined;
  readonly sizeParam?: string | undefined;
  readonly size?: number | undefined;
  readonly start: number;
  readonly maxPages: number;
  readonly nextUrlPath?: string | undefined;
  readonly nextUrlHeader?: string | undefined;
}

export interface CollectionSpec {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly pagination: PaginationConfig | undefined;
  readonly recordsPath: string;
  /** Added to the first request (e.g. the incremental lower bound). */
  readonly query?: Readonly<Record<string, string>>;
}

export interface Page {
  /** 1-based. */
  readonly index: number;
  readonly url: string;
  readonly records: readonly unknown[];
}

function withQuery(url: string, params: Readonly<Record<string, string | number>>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, String(v));
  return u.toString();
}

export async function* readPages(spec: CollectionSpec, caller: HttpCaller): AsyncGenerator<Page> {
  const p = spec.pagination;
  const recordsAt = pointer(spec.recordsPath);
  const first: Record<string, string | number> = { ...spec.query };
  if (p?.sizeParam && p.size !== undefined) first[p.sizeParam] = p.size;
  if (p && (p.type === 'page' || p.type === 'offset') && p.param) first[p.param] = p.start;
  let url = withQuery(spec.url, first);
  const followed = new Set<string>([url]);
  let previousBody: string | undefined;
  let offset = p?.start ?? 0;
  let pageNo = p?.start ?? 1;
  const maxPages = p?.maxPages ?? 1;
  for (let index = 1; ; index++) {
    if (index > maxPages) throw new RunBudgetExhaustedError(`maxPages (${maxPages}) reached at ${url}; the next run goes on from the committed watermark`);
    let response;
    try {
      response = await caller.call({ url, method: 'GET', headers: { accept: 'application/json', ...spec.headers }, timeoutMs: spec.timeoutMs });
    } catch (err) {
      if (err instanceof HttpCallFailed) throw new SourceRequestError(index, url, err.message, err.status);
      throw err;
    }
    if (response.status < 200 || response.status > 299) throw new SourceRequestError(index, url, `HTTP ${response.status}: ${response.body.slice(0, 200)}`, response.status);
    if (response.truncated) throw new SourceResponseError(index, url, 'response body larger than the page limit; ask for smaller pages (pagination.size)');
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      throw new SourceResponseError(index, url, 'response is not JSON');
    }
    const records = valueAt(body, recordsAt);
    if (!Array.isArray(records)) {
      const found = records === undefined ? 'nothing' : records === null ? 'null' : typeof records;
      throw new SourceResponseError(index, url, `recordsPath ${JSON.stringify(spec.recordsPath)} is not an array (found ${found})`);
    }
    if (previousBody !== undefined && records.length > 0 && response.body === previousBody) {
      throw new PaginationLoopError(`source page ${index} (${url}) is identical to the previous page: the pagination parameter is not honoured`);
    }
    previousBody = response.body;
    yield { index, url, records };
    if (!p) return;
    let next: string | undefined;
    switch (p.type) {
      case 'cursor': {
        const c = valueAt(body, pointer(p.cursorPath ?? ''));
        if (c === undefined || c === null || c === '' || records.length === 0) return;
        next = withQuery(spec.url, { ...first, [p.param ?? 'cursor']: typeof c === 'string' ? c : JSON.stringify(c) });
        break;
      }
      case 'page':
      case 'offset': {
        if (records.length === 0 || (p.size !== undefined && records.length < p.size)) return;
        offset += records.length;
        pageNo += 1;
        next = withQuery(spec.url, { ...first, [p.param ?? 'page']: p.type === 'page' ? pageNo : offset });
        break;
      }
      case 'linkHeader':
        next = nextLink(response.headers.link, url);
        if (next === undefined) return;
        break;
      case 'nextUrl': {
        const raw = p.nextUrlHeader ? response.headers[p.nextUrlHeader.toLowerCase()] : valueAt(body, pointer(p.nextUrlPath ?? ''));
        if (typeof raw !== 'string' || raw === '') return;
        try {
          next = new URL(raw, url).toString();
        } catch {
          throw new SourceResponseError(index, url, `next page URL ${JSON.stringify(raw.slice(0, 200))} is not a URL`);
        }
        break;
      }
    }
    if (followed.has(next)) throw new PaginationLoopError(`source page ${index + 1} (${next}) was already read in this run: the pagination does not advance`);
    followed.add(next);
    url = next;
  }
}
