/**
 * Two local HTTP APIs for SyncSchedule integration tests and the sync benchmark: a CRM that plays
 * the sync SOURCE (contact lists under five pagination styles) and an ERP that plays the sync
 * TARGET (single and batch writes, paged lookups). Both listen on 127.0.0.1 with a free port,
 * record every request, and take faults that are injected "in front of" the application, like a
 * load balancer or a rate limiter in front of a real API, as in `fault-target.ts`.
 *
 * Both are built for 100,000 records: records live in Maps, the sorted order each list needs is
 * computed lazily and cached until the next mutation, and a page is found by binary search, so a
 * request costs O(log n + page) — a full paginated read is O(n log n), never O(n²).
 *
 * CRM (source) guarantees:
 * - Every list endpoint keeps the records with `updatedAt >= updated_since` (compared as instants;
 *   the query is RFC 3339 or unix milliseconds) and returns them in keyset order — `updatedAt`,
 *   then `id` by UTF-16 code units — unless `reorderWithinPages` shuffles each page (the pages
 *   still hold the same records; only the order inside a page changes).
 * - Cursors are keysets (the last record's `[updatedAt, id]`), so a record inserted or updated
 *   while a client pages through is neither skipped nor duplicated unless its key moves past the
 *   cursor — an update during a read moves the record to the end, where the read picks it up again,
 *   as real keyset APIs do. Page and offset pagination have the usual drift under mutation.
 * - Soft-deleted records (`deleted: true`) are listed like any other; `remove` deletes for good.
 * - Faults happen in order: `delayMs`, `hangAfterPages`, `failPages`, then authentication (401),
 *   then `malformed`. `pageIndex` (0-based) counts list requests since `resetCounters`.
 * - A bad `limit` (not 1..1000), `page` (< 1), `offset` (< 0), `cursor` or `updated_since` is a
 *   400, never silently clamped, so a misconfigured schedule fails loudly.
 *
 * ERP (target) guarantees:
 * - The business identity is the record's `id` (the path's for `/records/:id`, the body's for
 *   `POST /records`, each item's for `POST /batch`). `stats()` counts by it: how often each id was
 *   written (`appliedById`) and with how many distinct bodies (`distinctBodiesById`, compared as
 *   JSON with sorted keys) — an exactly-once sync writes each changed id once, with one body.
 * - Order of handling: scripted fault or `throttleShare` (in front: not applied, not saved) →
 *   authentication (401) → idempotency → `delayMs` → the application (`rejectIds`, 404/409) → save.
 * - Idempotency (Stripe semantics) on writes (PUT, PATCH, POST, DELETE) with an
 *   `Idempotency-Key` header: the first execution is saved, whatever its status; the same key with
 *   the same method, path and body replays it (`Idempotent-Replayed: true`, not applied again); the
 *   same key with another method, path or body → 422 `idempotency_error`; the same key while the
 *   first is still executing (inside `delayMs`) → 409 `idempotency_key_in_use`. Writes without a
 *   key are applied every time. Front faults and 401s are not saved: a retry with the key executes.
 * - Retry-After discipline: every 429 or 503 carrying `Retry-After` (seconds or an HTTP-date)
 *   opens a window until which the (single) client must send nothing. A request arriving inside a
 *   window counts in `retryAfterViolations`, with {@link RETRY_AFTER_TOLERANCE_MS} of slack at the
 *   end. Requests arriving within that same slack after the 429 was sent are excused — they may
 *   have been in flight before the client could see it — unless they resend the throttled request
 *   itself (same method, URL and body), which the client can only have done after reading the 429.
 *   `resetCounters` closes the open windows: call it when the client changes (an operator restart).
 *
 * Usage:
 *   const crm = await startCrm();
 *   crm.seed(contacts(1_050));
 *   const erp = await startErp();
 *   erp.throttleShare(0.1, 1);
 *   ... run a SyncSchedule from `${crm.url}/cursor/contacts` to `${erp.url}/records/{id}` ...
 *   assert.equal(erp.stats().retryAfterViolations, 0);
 *   await Promise.all([crm.close(), erp.close()]);
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// ————————————————————————————————————————————————————————————————————————————— shared

/** An answer given in front of the application: not applied, not saved for idempotency. */
export interface Fault {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/**
 * Slack in judging Retry-After: a request may arrive this much before a window's end, and another
 * request this long after the 429 (see the header). 250 ms, not less: on a loaded two-core CI
 * machine a request the client handed to its socket before the 429 reached it was seen arriving
 * well over 50 ms later. A client that ignores the hint (retrying at its backoff, or at once) still
 * lands deep inside a 1 s window.
 */
export const RETRY_AFTER_TOLERANCE_MS = 250;

type Headers = Readonly<Record<string, string>>;

const JSON_HEADERS: Headers = { 'content-type': 'application/json' };

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

const jsonReply = (status: number, value: unknown, headers: Headers = {}): Reply => ({
  status,
  headers: { ...JSON_HEADERS, ...headers },
  body: JSON.stringify(value),
});

const errorReply = (status: number, type: string, message: string): Reply => jsonReply(status, { error: { type, message } });

const unauthorizedReply = (): Reply => ({
  status: 401,
  headers: { ...JSON_HEADERS, 'www-authenticate': 'Bearer error="invalid_token"' },
  body: JSON.stringify({ error: { type: 'authentication_error', message: 'missing or wrong bearer token' } }),
});

function send(res: ServerResponse, reply: Reply): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(reply.status, { 'content-length': String(Buffer.byteLength(reply.body)), ...reply.headers });
  res.end(reply.body);
}

/** Header names in lower case, as Node reports them, so `Retry-After` and `retry-after` are one. */
const lowerCased = (headers: Headers | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));

const authorized = (token: string | undefined, req: IncomingMessage): boolean =>
  token === undefined || req.headers.authorization === `Bearer ${token}`;

/** Thrown by query parsing; answered as a 400. */
class BadRequest extends Error {}

/** A positive or non-negative safe integer query parameter, or `fallback` when absent or empty. */
function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const value = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new BadRequest(`${name} must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** The first index in `items` for which the monotone `pred` holds (items.length if none). */
function lowerBound<T>(items: readonly T[], pred: (item: T) => boolean): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(items[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** An absolute URL on `base` with the request's query, some parameters replaced (`undefined` deletes). */
function linkTo(base: string, path: string, query: URLSearchParams, changes: Readonly<Record<string, string | undefined>>): string {
  const url = new URL(path, base);
  url.search = query.toString();
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) url.searchParams.delete(name);
    else url.searchParams.set(name, value);
  }
  return url.href;
}

/** An RFC 8288 header with a `first` link BEFORE the `next` one, so a parser must pick by rel. */
const linkHeader = (first: string, next: string | undefined): string =>
  next === undefined ? `<${first}>; rel="first"` : `<${first}>; rel="first", <${next}>; rel="next"`;

/** A listening server plus the timers and sockets to drop on close. */
interface Listener {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Timers that `close` can cancel: a delayed request then never resumes (its socket is destroyed). */
class Timers {
  readonly #pending = new Set<NodeJS.Timeout>();
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(timer);
        resolve();
      }, ms);
      this.#pending.add(timer);
    });
  }
  clear(): void {
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
  }
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<Listener> {
  const server = createServer((req, res) => {
    handler(req, res).catch((error: unknown) => {
      send(res, errorReply(500, 'internal', error instanceof Error ? error.message : String(error)));
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// ————————————————————————————————————————————————————————————————————————————— CRM

/** A contact in the CRM. `updatedAt` is RFC 3339 with milliseconds, e.g. `2026-12-01T10:00:00.000Z`. */
export interface CrmRecord {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly amount: number;
  readonly updatedAt: string;
  readonly deleted?: boolean;
}

/** The pagination styles, each served at `/<style>/contacts`. */
export type CrmStyle = 'cursor' | 'page' | 'offset' | 'link' | 'wrapped';
export const CRM_STYLES: readonly CrmStyle[] = ['cursor', 'page', 'offset', 'link', 'wrapped'];

/** A list request as the fault predicates see it. */
export interface CrmPageRequest {
  readonly path: string;
  readonly query: URLSearchParams;
  /** 0-based: list requests (any style) since the last `resetCounters`, in arrival order. */
  readonly pageIndex: number;
}

/** One request to the CRM. `status` is 0 until it is answered (a held request stays 0). */
export interface CrmRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  status: number;
  /** Date.now() on arrival. */
  readonly at: number;
}

export interface CrmOptions {
  /** Require `Authorization: Bearer <token>`, else 401. */
  readonly token?: string;
}

export interface Crm {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  /** Every request since the last `resetCounters`, in arrival order (live view). */
  readonly requests: readonly CrmRequest[];
  /** Shuffle the records inside each page (deterministically; never the keyset order when a page has 2+ records). */
  reorderWithinPages: boolean;
  /** Ignore `updated_since`: a broken filter that returns everything. */
  ignoreFilter: boolean;
  /** Wait this long before handling each request. Default 0. */
  delayMs: number;
  /** How many records the CRM holds. */
  readonly size: number;
  /** Adds or replaces these records (by id). Does not remove others. */
  seed(records: Iterable<CrmRecord>): void;
  /** Adds or replaces one record. */
  upsert(record: CrmRecord): void;
  /** Sets `fields` and `updatedAt` (the given `fields.updatedAt`, else now); throws for an unknown id. Returns the result. */
  update(id: string, fields: Partial<Omit<CrmRecord, 'id'>>): CrmRecord;
  /** Deletes for good (not a soft delete): it disappears from every list. False if unknown. */
  remove(id: string): boolean;
  get(id: string): CrmRecord | undefined;
  /** Copies of all records in keyset order (`updatedAt`, then `id`). */
  all(): CrmRecord[];
  /**
   * For each list request, a status (or a whole fault) to answer instead of the page — body
   * `{"error":"injected"}` for a bare status — or `undefined` to serve it. `undefined` clears.
   */
  failPages(predicate: ((req: CrmPageRequest) => number | Fault | undefined) | undefined): void;
  /** Answer 200 with records that are not an array (`{"data":{"oops":true}}`) where this holds. */
  malformed(predicate: ((req: CrmPageRequest) => boolean) | undefined): void;
  /**
   * Answer `n` more list requests, then hold every further one unanswered until `release()`
   * (lets a test kill an operator between pages). `undefined` stops holding new ones.
   */
  hangAfterPages(n: number | undefined): void;
  /** Lets every held list request go on (then answered normally, faults included) and stops holding. */
  release(): void;
  /** List requests held now. */
  readonly held: number;
  /** Resolves once at least `count` list requests are held. */
  waitForHeld(count?: number): Promise<void>;
  /** Clears `requests` and restarts `pageIndex` at 0. Keeps the records and the fault settings. */
  resetCounters(): void;
  /** Closes the server, dropping held and delayed requests. */
  close(): Promise<void>;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

interface CrmEntry {
  readonly record: CrmRecord;
  /** `updatedAt` as epoch milliseconds. */
  readonly ms: number;
}

function instant(updatedAt: string, what: string): number {
  const ms = RFC3339.test(updatedAt) ? Date.parse(updatedAt) : NaN;
  if (!Number.isFinite(ms)) throw new TypeError(`${what}: updatedAt must be RFC 3339, got ${JSON.stringify(updatedAt)}`);
  return ms;
}

const compareKeys = (a: CrmEntry, ms: number, id: string): number => a.ms - ms || compareIds(a.record.id, id);

const encodeCursor = (entry: CrmEntry): string =>
  Buffer.from(JSON.stringify([entry.record.updatedAt, entry.record.id])).toString('base64url');

function decodeCursor(cursor: string): { ms: number; id: string } {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string') {
      return { ms: instant(value[0], 'cursor'), id: value[1] };
    }
  } catch {
    // answered below
  }
  throw new BadRequest(`invalid cursor ${JSON.stringify(cursor)}`);
}

function parseSince(query: URLSearchParams): number | undefined {
  const raw = query.get('updated_since');
  if (raw === null || raw === '') return undefined;
  if (/^-?\d+$/.test(raw)) return Number(raw);
  const ms = RFC3339.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ms)) throw new BadRequest(`updated_since must be RFC 3339 or unix milliseconds, got ${JSON.stringify(raw)}`);
  return ms;
}

/** FNV-1a, for seeding the page shuffle. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A deterministic shuffle (mulberry32 + Fisher–Yates) that never leaves 2+ items in their order. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  if (out.length > 1 && out.every((item, i) => item === items[i])) out.push(out.shift()!);
  return out;
}

/** Starts a CRM on 127.0.0.1 with a free port. */
export async function startCrm(options: CrmOptions = {}): Promise<Crm> {
  const records = new Map<string, CrmEntry>();
  let sortedCache: CrmEntry[] | undefined;
  const sorted = (): CrmEntry[] => {
    sortedCache ??= [...records.values()].sort((a, b) => compareKeys(a, b.ms, b.record.id));
    return sortedCache;
  };
  const store = (record: CrmRecord): void => {
    if (typeof record.id !== 'string' || record.id === '') throw new TypeError(`CRM record needs a string id: ${JSON.stringify(record)}`);
    records.set(record.id, { record: { ...record }, ms: instant(record.updatedAt, `CRM record ${record.id}`) });
    sortedCache = undefined;
  };

  const requests: CrmRequest[] = [];
  const timers = new Timers();
  let listCount = 0;
  let failPredicate: ((req: CrmPageRequest) => number | Fault | undefined) | undefined;
  let malformedPredicate: ((req: CrmPageRequest) => boolean) | undefined;
  let hangAllowance: number | undefined;
  let held: (() => void)[] = [];
  let heldWaiters: { count: number; resolve: () => void }[] = [];
  const settings = { reorderWithinPages: false, ignoreFilter: false, delayMs: 0 };

  const notifyHeld = (): void => {
    heldWaiters = heldWaiters.filter((waiter) => {
      if (held.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });
  };

  /** The page a list request asks for; throws BadRequest for bad parameters. */
  const page = (style: CrmStyle, path: string, query: URLSearchParams): Reply => {
    const limit = intParam(query, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT);
    const since = parseSince(query);
    const entries = sorted();
    const start = since === undefined || settings.ignoreFilter ? 0 : lowerBound(entries, (e) => e.ms >= since);
    let from: number;
    if (style === 'page') from = start + (intParam(query, 'page', 1, 1) - 1) * limit;
    else if (style === 'offset') from = start + intParam(query, 'offset', 0, 0);
    else {
      const cursor = query.get('cursor');
      if (cursor === null || cursor === '') from = start;
      else {
        const key = decodeCursor(cursor);
        from = Math.max(start, lowerBound(entries, (e) => compareKeys(e, key.ms, key.id) > 0));
      }
    }
    const slice = entries.slice(from, from + limit);
    const last = slice.at(-1);
    const nextCursor = last !== undefined && from + limit < entries.length ? encodeCursor(last) : null;
    const ordered = settings.reorderWithinPages ? shuffled(slice, hash32(`${slice[0]?.record.id}:${slice.length}`)) : slice;
    const data = ordered.map((e) => e.record);
    switch (style) {
      case 'page':
      case 'offset':
        return jsonReply(200, { data });
      case 'cursor':
        return jsonReply(200, { data, next_cursor: nextCursor });
      case 'wrapped':
        return jsonReply(200, { result: { items: data }, next_cursor: nextCursor });
      case 'link': {
        const first = linkTo(listener.url, path, query, { cursor: undefined });
        const next = nextCursor === null ? undefined : linkTo(listener.url, path, query, { cursor: nextCursor });
        return jsonReply(200, { data }, { link: linkHeader(first, next) });
      }
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: CrmRequest = { method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), status: 0, at: Date.now() };
    requests.push(record);
    const answer = (reply: Reply): void => {
      record.status = reply.status;
      send(res, reply);
    };
    const style = /^\/(cursor|page|offset|link|wrapped)\/contacts$/.exec(url.pathname)?.[1] as CrmStyle | undefined;
    const pageIndex = style !== undefined && record.method === 'GET' ? listCount++ : -1;
    if (settings.delayMs > 0) await timers.sleep(settings.delayMs);
    if (style === undefined) {
      answer(errorReply(404, 'not_found', `no route ${url.pathname}`));
      return;
    }
    if (record.method !== 'GET') {
      answer({ ...errorReply(405, 'method_not_allowed', 'GET only'), headers: { ...JSON_HEADERS, allow: 'GET' } });
      return;
    }
    if (hangAllowance !== undefined) {
      if (hangAllowance > 0) hangAllowance--;
      else {
        await new Promise<void>((resolve) => {
          held.push(resolve);
          notifyHeld();
        });
      }
    }
    const view: CrmPageRequest = { path: url.pathname, query: url.searchParams, pageIndex };
    const failure = failPredicate?.(view);
    if (failure !== undefined) {
      const fault = typeof failure === 'number' ? { status: failure } : failure;
      answer({ status: fault.status, headers: { ...JSON_HEADERS, ...lowerCased(fault.headers) }, body: fault.body ?? JSON.stringify({ error: 'injected' }) });
      return;
    }
    if (!authorized(options.token, req)) {
      answer(unauthorizedReply());
      return;
    }
    if (malformedPredicate?.(view) === true) {
      const oops = { oops: true };
      answer(jsonReply(200, style === 'wrapped' ? { result: { items: oops }, next_cursor: null } : { data: oops }));
      return;
    }
    try {
      answer(page(style, url.pathname, url.searchParams));
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      answer(errorReply(400, 'invalid_request', error.message));
    }
  };

  const listener = await listen(handle);

  return {
    url: listener.url,
    port: listener.port,
    requests,
    get reorderWithinPages() {
      return settings.reorderWithinPages;
    },
    set reorderWithinPages(value) {
      settings.reorderWithinPages = value;
    },
    get ignoreFilter() {
      return settings.ignoreFilter;
    },
    set ignoreFilter(value) {
      settings.ignoreFilter = value;
    },
    get delayMs() {
      return settings.delayMs;
    },
    set delayMs(value) {
      settings.delayMs = value;
    },
    get size() {
      return records.size;
    },
    seed(batch) {
      for (const record of batch) store(record);
    },
    upsert: store,
    update(id, fields) {
      const existing = records.get(id);
      if (existing === undefined) throw new Error(`CRM has no record ${id}`);
      const next: CrmRecord = { ...existing.record, ...fields, id, updatedAt: fields.updatedAt ?? new Date().toISOString() };
      store(next);
      return { ...next };
    },
    remove(id) {
      const removed = records.delete(id);
      if (removed) sortedCache = undefined;
      return removed;
    },
    get(id) {
      const entry = records.get(id);
      return entry === undefined ? undefined : { ...entry.record };
    },
    all() {
      return sorted().map((e) => ({ ...e.record }));
    },
    failPages(predicate) {
      failPredicate = predicate;
    },
    malformed(predicate) {
      malformedPredicate = predicate;
    },
    hangAfterPages(n) {
      hangAllowance = n;
    },
    release() {
      hangAllowance = undefined;
      const resume = held;
      held = [];
      for (const go of resume) go();
    },
    get held() {
      return held.length;
    },
    waitForHeld(count = 1) {
      return new Promise<void>((resolve) => {
        heldWaiters.push({ count, resolve });
        notifyHeld();
      });
    },
    resetCounters() {
      requests.length = 0;
      listCount = 0;
    },
    async close() {
      timers.clear();
      held = [];
      await listener.close();
    },
  };
}

/**
 * `count` contacts `c00001`, `c00002`, … with `updatedAt` one second apart from `start`
 * (default 2026-12-01T10:00:00.000Z), for seeding.
 */
export function contacts(count: number, start = '2026-12-01T10:00:00.000Z', prefix = 'c'): CrmRecord[] {
  const base = Date.parse(start);
  const width = Math.max(5, String(count).length);
  return Array.from({ length: count }, (_, i) => {
    const n = String(i + 1).padStart(width, '0');
    return { id: `${prefix}${n}`, name: `Contact ${n}`, email: `contact${n}@example.com`, amount: (i % 1000) * 10 + 0.5, updatedAt: new Date(base + i * 1000).toISOString() };
  });
}

// ————————————————————————————————————————————————————————————————————————————— ERP

/** A record in the ERP: any JSON object with a string `id`. */
export interface ErpRecord {
  readonly id: string;
  readonly [field: string]: unknown;
}

/** A request as `script` sees it, before anything else happens to it. */
export interface ErpScriptRequest {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** The path's id for `/records/:id`, the body's for `POST /records`; undefined for batches and lists. */
  readonly id?: string;
  /** The parsed JSON body; the raw text if it is not JSON; undefined if empty. */
  readonly body: unknown;
  /** 0-based: requests since the last `resetCounters`, in arrival order. */
  readonly n: number;
}

/** How the ERP handled a request; `pending` until answered. */
export type ErpOutcome = 'pending' | 'fault' | 'unauthorized' | 'replayed' | 'mismatch' | 'conflict' | 'executed';

/** One request to the ERP. */
export interface ErpRequest {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly id: string | undefined;
  /** 0 until answered. */
  status: number;
  outcome: ErpOutcome;
  readonly idempotencyKey: string | undefined;
  /** Date.now() on arrival (headers read). */
  readonly at: number;
  /** Arrived inside a Retry-After window (see the file's header). */
  readonly retryAfterViolation: boolean;
}

export interface ErpStats {
  /** Requests since the last `resetCounters`. */
  readonly requests: number;
  /** Upserts, creates and patches applied (single or batch items); deletes are counted apart. */
  readonly writesApplied: number;
  /** How often each id was written (upsert, create, patch), deletes not included. */
  readonly appliedById: Map<string, number>;
  /** How many distinct bodies (JSON with sorted keys, including `id`) were written for each id. */
  readonly distinctBodiesById: Map<string, number>;
  /** Deletes applied (answered 204). */
  readonly deletes: number;
  /** The ids deleted, in order. */
  readonly deletedIds: readonly string[];
  readonly retryAfterViolations: number;
  /** Requests answered 429 in front of the application (scripted or `throttleShare`). */
  readonly throttled: number;
  /** Requests answered by any scripted fault or `throttleShare` (429s included). */
  readonly faulted: number;
  /** Writes (single requests or batch items) rejected by `rejectIds`. */
  readonly rejected: number;
  /** Saved answers replayed for a repeated idempotency key. */
  readonly replayed: number;
  /** 409s for an idempotency key whose first request was still executing. */
  readonly conflicts: number;
  /** 422s for an idempotency key reused with another method, path or body. */
  readonly mismatches: number;
  /** `POST /records` answered 409 because the id existed. */
  readonly createConflicts: number;
  readonly unauthorized: number;
}

export interface ErpOptions {
  /** Require `Authorization: Bearer <token>`, else 401. */
  readonly token?: string;
  /** Default `limit` of `GET /records` and `/records-link` (default 100). */
  readonly lookupPageSize?: number;
}

export interface Erp {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  /** Every request since the last `resetCounters`, in arrival order (live view). */
  readonly requests: readonly ErpRequest[];
  /** Wait this long inside the application (after idempotency, holding the key) for each request. Default 0. */
  delayMs: number;
  /** Chooses a fault for each request (`undefined` → handled normally). `undefined` clears. */
  script(fn: ((req: ErpScriptRequest) => Fault | undefined) | undefined): void;
  /**
   * Answers 429 with `Retry-After: retryAfterSeconds` to `share` (0 ≤ share < 1) of the write
   * requests the script leaves alone, evenly spread by arrival order. 0 turns it off.
   */
  throttleShare(share: number, retryAfterSeconds: number): void;
  /** The application rejects writes (including deletes) of these ids with `status`, applying nothing. Replaces the previous set. */
  rejectIds(ids: Iterable<string>, status?: number): void;
  /** Behind-the-back drift (not counted): merges fields into a record; throws for an unknown id. */
  edit(id: string, fields: Readonly<Record<string, unknown>>): ErpRecord;
  /** Behind-the-back delete (not counted). False if unknown. */
  remove(id: string): boolean;
  /** Behind-the-back upsert (not counted). */
  put(record: ErpRecord): void;
  get(id: string): ErpRecord | undefined;
  /** A copy of the store. */
  all(): Map<string, ErpRecord>;
  readonly size: number;
  stats(): ErpStats;
  /** Clears `requests`, the stats, the throttle counter and the open Retry-After windows. Keeps records and saved idempotent answers. */
  resetCounters(): void;
  /** Closes the server, dropping delayed requests. */
  close(): Promise<void>;
}

const WRITE_METHODS = new Set(['PUT', 'PATCH', 'POST', 'DELETE']);

type ErpRoute =
  | { readonly kind: 'collection' }
  | { readonly kind: 'record'; readonly id: string }
  | { readonly kind: 'link' }
  | { readonly kind: 'batch' }
  | { readonly kind: 'unknown' };

const ALLOWED: Readonly<Record<ErpRoute['kind'], readonly string[]>> = {
  collection: ['GET', 'POST'],
  record: ['GET', 'PUT', 'PATCH', 'DELETE'],
  link: ['GET'],
  batch: ['POST'],
  unknown: [],
};

function erpRoute(path: string): ErpRoute {
  if (path === '/records') return { kind: 'collection' };
  if (path === '/records-link') return { kind: 'link' };
  if (path === '/batch') return { kind: 'batch' };
  const m = /^\/records\/([^/]+)$/.exec(path);
  if (m?.[1] !== undefined) {
    try {
      return { kind: 'record', id: decodeURIComponent(m[1]) };
    } catch {
      return { kind: 'unknown' };
    }
  }
  return { kind: 'unknown' };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** JSON with object keys sorted at every depth, so two equal bodies compare equal as text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(',')}}`;
  }
  return value === undefined ? 'null' : JSON.stringify(value);
}

/** A Retry-After value (seconds or an HTTP-date) as an absolute instant, or undefined. */
function retryAfterUntil(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return now + Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? date : undefined;
}

/**
 * Retry-After windows. A window binds every request that arrives from RETRY_AFTER_TOLERANCE_MS
 * after its 429/503 was sent until RETRY_AFTER_TOLERANCE_MS before its end. While it is younger
 * than that, it binds only a resend of the very request that was throttled (same method, URL and
 * body): the client can only have resent it after reading the answer, whereas another request may
 * have been on its way already (undici may also put a retry on a fresh connection, so the
 * connection tells nothing). The matured windows fold into one instant, so a check costs
 * O(windows opened in the last RETRY_AFTER_TOLERANCE_MS), whatever the request rate.
 *
 * `arrive` runs when a request's headers are read, in arrival order; it returns the young windows
 * the request may still violate as a resend, which `resends` checks once the body is read.
 */
class RetryAfterWindows {
  #young: YoungWindow[] = [];
  #maturedUntil = 0;

  open(at: number, until: number, request: string): void {
    if (until - RETRY_AFTER_TOLERANCE_MS > at) this.#young.push({ at, until, request });
  }

  /** Whether a request arriving `now` violates a matured window, and the young windows it might violate as a resend. */
  arrive(now: number): { readonly violates: boolean; readonly young: readonly YoungWindow[] } {
    let matured = 0;
    while (matured < this.#young.length && this.#young[matured]!.at + RETRY_AFTER_TOLERANCE_MS <= now) {
      this.#maturedUntil = Math.max(this.#maturedUntil, this.#young[matured]!.until);
      matured++;
    }
    if (matured > 0) this.#young = this.#young.slice(matured);
    const violates = now < this.#maturedUntil - RETRY_AFTER_TOLERANCE_MS;
    return { violates, young: violates ? [] : this.#young.filter((w) => now < w.until - RETRY_AFTER_TOLERANCE_MS) };
  }

  static resends(young: readonly YoungWindow[], request: string): boolean {
    return young.some((w) => w.request === request);
  }

  clear(): void {
    this.#young = [];
    this.#maturedUntil = 0;
  }
}

interface YoungWindow {
  readonly at: number;
  readonly until: number;
  /** Method, URL and body of the throttled request. */
  readonly request: string;
}

interface Saved {
  readonly fingerprint: string;
  readonly reply: Reply;
}

/** Starts an ERP on 127.0.0.1 with a free port. */
export async function startErp(options: ErpOptions = {}): Promise<Erp> {
  const lookupPageSize = options.lookupPageSize ?? DEFAULT_LIMIT;
  const records = new Map<string, ErpRecord>();
  let sortedIdsCache: string[] | undefined;
  const sortedIds = (): string[] => {
    sortedIdsCache ??= [...records.keys()].sort(compareIds);
    return sortedIdsCache;
  };
  const setRecord = (record: ErpRecord): void => {
    if (!records.has(record.id)) sortedIdsCache = undefined;
    records.set(record.id, record);
  };
  const deleteRecord = (id: string): boolean => {
    const deleted = records.delete(id);
    if (deleted) sortedIdsCache = undefined;
    return deleted;
  };

  const requests: ErpRequest[] = [];
  const saved = new Map<string, Saved>();
  const executing = new Set<string>();
  const windows = new RetryAfterWindows();
  const timers = new Timers();
  const settings = { delayMs: 0 };
  let script: ((req: ErpScriptRequest) => Fault | undefined) | undefined;
  let throttle = { share: 0, retryAfterSeconds: 1 };
  let rejectedIds = new Set<string>();
  let rejectStatus = 422;

  const fresh = () => ({
    n: 0,
    writes: 0,
    writesApplied: 0,
    appliedById: new Map<string, number>(),
    bodiesById: new Map<string, Set<string>>(),
    deletes: 0,
    deletedIds: [] as string[],
    retryAfterViolations: 0,
    throttled: 0,
    faulted: 0,
    rejected: 0,
    replayed: 0,
    conflicts: 0,
    mismatches: 0,
    createConflicts: 0,
    unauthorized: 0,
  });
  let counts = fresh();

  // ——— the application

  /** Counts and stores one write of `record` (already checked against `rejectIds`). */
  const applyWrite = (record: ErpRecord, body: Record<string, unknown>): void => {
    setRecord(record);
    counts.writesApplied++;
    counts.appliedById.set(record.id, (counts.appliedById.get(record.id) ?? 0) + 1);
    let bodies = counts.bodiesById.get(record.id);
    if (bodies === undefined) counts.bodiesById.set(record.id, (bodies = new Set()));
    bodies.add(canonical({ ...body, id: record.id }));
  };

  const rejection = (id: string): Reply | undefined => {
    if (!rejectedIds.has(id)) return undefined;
    counts.rejected++;
    return errorReply(rejectStatus, 'rejected', `record ${id} rejected by the ERP`);
  };

  const lookupPage = (query: URLSearchParams): { data: ErpRecord[]; page: number; limit: number; more: boolean } => {
    const page = intParam(query, 'page', 1, 1);
    const limit = intParam(query, 'limit', lookupPageSize, 1);
    const ids = sortedIds();
    const from = (page - 1) * limit;
    return { data: ids.slice(from, from + limit).map((id) => records.get(id)!), page, limit, more: from + limit < ids.length };
  };

  const execute = (method: string, path: string, route: ErpRoute, query: URLSearchParams, body: unknown): Reply => {
    switch (route.kind) {
      case 'unknown':
        return errorReply(404, 'not_found', `no route ${path}`);
      case 'collection':
      case 'link':
        if (method === 'GET') {
          const { data, page, limit, more } = lookupPage(query);
          if (route.kind === 'collection') return jsonReply(200, { data });
          const first = linkTo(listener.url, path, query, { page: undefined });
          const next = more ? linkTo(listener.url, path, query, { page: String(page + 1), limit: String(limit) }) : undefined;
          return jsonReply(200, { data }, { link: linkHeader(first, next) });
        }
        break;
      case 'record':
        if (method === 'GET') {
          const record = records.get(route.id);
          return record === undefined ? errorReply(404, 'not_found', `no record ${route.id}`) : jsonReply(200, record);
        }
        if (method === 'DELETE') {
          const rejected = rejection(route.id);
          if (rejected) return rejected;
          if (!deleteRecord(route.id)) return errorReply(404, 'not_found', `no record ${route.id}`);
          counts.deletes++;
          counts.deletedIds.push(route.id);
          return { status: 204, headers: {}, body: '' };
        }
        break;
      case 'batch':
        break;
    }

    // Writes with a body.
    if (!isObject(body)) return errorReply(400, 'invalid_request', 'the body must be a JSON object');
    if (route.kind === 'batch') {
      if (!Array.isArray(body.records)) return errorReply(400, 'invalid_request', 'the body must be {"records": [...]}');
      const results = body.records.map((item: unknown) => {
        if (!isObject(item) || typeof item.id !== 'string' || item.id === '') {
          const id = isObject(item) && (typeof item.id === 'string' || typeof item.id === 'number') ? String(item.id) : '';
          return { id, status: 422, error: 'each record needs a non-empty string id' };
        }
        const record = item as ErpRecord;
        if (rejectedIds.has(record.id)) {
          counts.rejected++;
          return { id: record.id, status: rejectStatus, error: `record ${record.id} rejected by the ERP` };
        }
        applyWrite(record, item);
        return { id: record.id, status: 200 };
      });
      return jsonReply(200, { results });
    }
    const id = route.kind === 'record' ? route.id : body.id;
    if (typeof id !== 'string' || id === '') return errorReply(422, 'invalid_request', 'the body needs a non-empty string id');
    if (body.id !== undefined && body.id !== id) return errorReply(400, 'invalid_request', `body id ${JSON.stringify(body.id)} does not match the path's ${JSON.stringify(id)}`);
    const rejected = rejection(id);
    if (rejected) return rejected;
    const existing = records.get(id);
    if (method === 'PUT') {
      const record: ErpRecord = { ...body, id };
      applyWrite(record, body);
      return jsonReply(200, record);
    }
    if (method === 'PATCH') {
      if (existing === undefined) return errorReply(404, 'not_found', `no record ${id}`);
      const record: ErpRecord = { ...existing, ...body, id };
      applyWrite(record, body);
      return jsonReply(200, record);
    }
    // POST /records
    if (existing !== undefined) {
      counts.createConflicts++;
      return errorReply(409, 'conflict', `record ${id} already exists`);
    }
    const record: ErpRecord = { ...body, id };
    applyWrite(record, body);
    return jsonReply(201, record);
  };

  // ——— in front of the application

  const throttleFault = (): Fault | undefined => {
    if (throttle.share <= 0) return undefined;
    const w = counts.writes++;
    if (Math.floor((w + 1) * throttle.share) <= Math.floor(w * throttle.share)) return undefined;
    return { status: 429, headers: { 'retry-after': String(throttle.retryAfterSeconds) }, body: JSON.stringify({ error: { type: 'rate_limited' } }) };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const at = Date.now();
    const arrival = windows.arrive(at);
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route = erpRoute(url.pathname);
    const keyHeader = req.headers['idempotency-key'];
    const key = WRITE_METHODS.has(method) && typeof keyHeader === 'string' ? keyHeader : undefined;
    const raw = await readBody(req);
    let body: unknown;
    if (raw !== '') {
      try {
        body = JSON.parse(raw) as unknown;
      } catch {
        body = raw;
      }
    }
    const fullRequest = `${method} ${req.url ?? '/'}\n${raw}`;
    const violation = arrival.violates || RetryAfterWindows.resends(arrival.young, fullRequest);
    if (violation) counts.retryAfterViolations++;
    const id = route.kind === 'record' ? route.id : route.kind === 'collection' && method === 'POST' && isObject(body) && typeof body.id === 'string' ? body.id : undefined;
    const record: ErpRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      id,
      status: 0,
      outcome: 'pending',
      idempotencyKey: typeof keyHeader === 'string' ? keyHeader : undefined,
      at,
      retryAfterViolation: violation,
    };
    requests.push(record);
    const n = counts.n++;
    const answer = (outcome: ErpOutcome, reply: Reply): void => {
      record.outcome = outcome;
      record.status = reply.status;
      if (reply.status === 429 || reply.status === 503) {
        const sentAt = Date.now();
        const until = retryAfterUntil(reply.headers['retry-after'], sentAt);
        if (until !== undefined) windows.open(sentAt, until, fullRequest);
      }
      send(res, reply);
    };

    const fault = script?.({ method, path: url.pathname, ...(id === undefined ? {} : { id }), body, n }) ?? (WRITE_METHODS.has(method) ? throttleFault() : undefined);
    if (fault !== undefined) {
      counts.faulted++;
      if (fault.status === 429) counts.throttled++;
      const headers = { ...(fault.body === undefined ? {} : JSON_HEADERS), ...lowerCased(fault.headers) };
      answer('fault', { status: fault.status, headers, body: fault.body ?? '' });
      return;
    }
    if (!authorized(options.token, req)) {
      counts.unauthorized++;
      answer('unauthorized', unauthorizedReply());
      return;
    }
    if (!ALLOWED[route.kind].includes(method)) {
      answer('executed', route.kind === 'unknown' ? errorReply(404, 'not_found', `no route ${url.pathname}`) : { ...errorReply(405, 'method_not_allowed', `${method} not allowed`), headers: { ...JSON_HEADERS, allow: ALLOWED[route.kind].join(', ') } });
      return;
    }

    let fingerprint: string | undefined;
    if (key !== undefined) {
      fingerprint = createHash('sha256').update(fullRequest).digest('base64');
      const previous = saved.get(key);
      if (previous !== undefined) {
        if (previous.fingerprint !== fingerprint) {
          counts.mismatches++;
          answer('mismatch', errorReply(422, 'idempotency_error', 'Keys for idempotent requests can only be used with the same parameters they were first used with.'));
          return;
        }
        counts.replayed++;
        answer('replayed', { ...previous.reply, headers: { ...previous.reply.headers, 'idempotent-replayed': 'true' } });
        return;
      }
      if (executing.has(key)) {
        counts.conflicts++;
        answer('conflict', jsonReply(409, { error: { type: 'idempotency_error', code: 'idempotency_key_in_use' } }));
        return;
      }
      executing.add(key);
    }
    try {
      if (settings.delayMs > 0) await timers.sleep(settings.delayMs);
      let reply: Reply;
      try {
        reply = execute(method, url.pathname, route, url.searchParams, body);
      } catch (error) {
        if (!(error instanceof BadRequest)) throw error;
        reply = errorReply(400, 'invalid_request', error.message);
      }
      if (key !== undefined && fingerprint !== undefined) saved.set(key, { fingerprint, reply });
      answer('executed', reply);
    } finally {
      if (key !== undefined) executing.delete(key);
    }
  };

  const listener = await listen(handle);

  const copyStore = (): Map<string, ErpRecord> => new Map([...records].map(([id, record]) => [id, { ...record }]));

  return {
    url: listener.url,
    port: listener.port,
    requests,
    get delayMs() {
      return settings.delayMs;
    },
    set delayMs(value) {
      settings.delayMs = value;
    },
    script(fn) {
      script = fn;
    },
    throttleShare(share, retryAfterSeconds) {
      if (!(share >= 0 && share < 1)) throw new RangeError(`throttleShare: share must be in [0, 1), got ${share}`);
      throttle = { share, retryAfterSeconds };
    },
    rejectIds(ids, status = 422) {
      rejectedIds = new Set(ids);
      rejectStatus = status;
    },
    edit(id, fields) {
      const existing = records.get(id);
      if (existing === undefined) throw new Error(`ERP has no record ${id}`);
      const record: ErpRecord = { ...existing, ...fields, id };
      setRecord(record);
      return { ...record };
    },
    remove: deleteRecord,
    put(record) {
      setRecord({ ...record });
    },
    get(id) {
      const record = records.get(id);
      return record === undefined ? undefined : { ...record };
    },
    all: copyStore,
    get size() {
      return records.size;
    },
    stats() {
      return {
        requests: requests.length,
        writesApplied: counts.writesApplied,
        appliedById: new Map(counts.appliedById),
        distinctBodiesById: new Map([...counts.bodiesById].map(([id, bodies]) => [id, bodies.size])),
        deletes: counts.deletes,
        deletedIds: [...counts.deletedIds],
        retryAfterViolations: counts.retryAfterViolations,
        throttled: counts.throttled,
        faulted: counts.faulted,
        rejected: counts.rejected,
        replayed: counts.replayed,
        conflicts: counts.conflicts,
        mismatches: counts.mismatches,
        createConflicts: counts.createConflicts,
        unauthorized: counts.unauthorized,
      };
    },
    resetCounters() {
      requests.length = 0;
      counts = fresh();
      windows.clear();
    },
    async close() {
      timers.clear();
      await listener.close();
    },
  };
}
