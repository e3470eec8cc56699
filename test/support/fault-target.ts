/**
 * A local HTTP target for integration tests: it records every request, injects faults on a
 * script, and honours idempotency keys the way Stripe does, so duplicates are countable.
 *
 * Idempotency (Stripe semantics):
 * - The first request with a key that the target "executes" is applied and its response saved.
 * - A later request with the same key and the same method, path and body gets the saved response
 *   replayed (header `Idempotent-Replayed: true`) and is not applied again.
 * - The same key with a different method, path or body → 422 (`idempotency_error`).
 * - The same key while the first request is still being answered → 409 (`idempotency_key_in_use`).
 * - Scripted faults (`status`, `hang`, `reset`, `slow` before a `status`) happen "in front of"
 *   the application, like a load balancer or rate limiter: nothing is applied or saved, so a retry
 *   with the same key is executed normally. `respond`, `slowBody` and `lostResponse` are executed.
 *
 * Authentication (`auth`, replaceable with `setAuth` to rotate credentials mid-test): like a real
 * API, a request without valid credentials is answered 401 by the application (after any
 * scripted front-end fault) and never applied.
 *
 * A duplicate is an applied request whose BUSINESS identity (by default the JSON body's
 * `externalId`, else its `id`; see `identify`) was already applied — never the idempotency key,
 * which is the mechanism under test: a target that deduplicates by key cannot see two keys for
 * one invoice. That is the thing an at-most-once promise must keep at zero.
 *
 * Usage:
 *   const target = await startFaultTarget();
 *   target.script(perKey(faults.status(503), faults.throttle(2)));   // 503, then 429, then success
 *   ... deliver to `${target.url}/v1/invoices` ...
 *   assert.equal(target.stats().duplicates, 0);
 *   await target.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { OAuth2TokenServer } from './oauth2-server.ts';

/** What the target does with one request. */
export type Fault =
  /** Answer with this status before executing: not applied, not saved. */
  | { readonly kind: 'status'; readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body?: string }
  /** Execute (apply, save for replay) and answer with this status and body — e.g. a 2xx with a chosen or malformed body. */
  | { readonly kind: 'respond'; readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body: string }
  /** Never answer (until the target is closed). Not applied. */
  | { readonly kind: 'hang' }
  /** Wait `delayMs`, then do `then` (default: the default success). */
  | { readonly kind: 'slow'; readonly delayMs: number; readonly then?: Fault }
  /** Execute (apply, save), send the headers and the first byte of the body, the rest after `delayMs`. */
  | { readonly kind: 'slowBody'; readonly delayMs: number }
  /** Reset the connection (TCP RST) without answering. Not applied. */
  | { readonly kind: 'reset' }
  /** Execute (apply, save), then reset the connection: the client never sees the answer. */
  | { readonly kind: 'lostResponse' };

/** How the target handled a request. `pending` until it is answered or dropped. */
export type RequestOutcome = 'pending' | 'applied' | 'replayed' | 'mismatch' | 'conflict' | 'fault' | 'unauthorized';

/** Credentials the target requires, as a real API does. */
export type TargetAuth =
  | { readonly kind: 'bearer'; readonly token: string }
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'apiKey'; readonly header: string; readonly key: string }
  | { readonly kind: 'oauth2'; readonly server: OAuth2TokenServer };

function authorized(auth: TargetAuth | undefined, headers: Readonly<Record<string, string>>): boolean {
  switch (auth?.kind) {
    case undefined:
      return true;
    case 'bearer':
      return headers.authorization === `Bearer ${auth.token}`;
    case 'basic':
      return headers.authorization === `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    case 'apiKey':
      return headers[auth.header.toLowerCase()] === auth.key;
    case 'oauth2': {
      const m = /^Bearer (.+)$/.exec(headers.authorization ?? '');
      return m?.[1] !== undefined && auth.server.valid(m[1]);
    }
  }
}

/** The business identity of a request: the JSON body's `externalId`, else its `id`. */
export function bodyIdentity(request: RecordedRequest): string | undefined {
  try {
    const body = JSON.parse(request.body) as unknown;
    if (typeof body !== 'object' || body === null) return undefined;
    const { externalId, id } = body as { externalId?: unknown; id?: unknown };
    const value = externalId ?? id;
    return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  } catch {
    return undefined;
  }
}

export interface RecordedRequest {
  /** 0-based arrival order. */
  readonly index: number;
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  /** Lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Date.now() when the body had been read. */
  readonly receivedAt: number;
  /** The client's port: requests with the same port came over the same (kept-alive) connection. */
  readonly remotePort: number | undefined;
  /** The idempotency key, if the request had one. */
  readonly key: string | undefined;
  /** 1-based: how many requests with this key (including this one) have arrived. 1 without a key. */
  readonly keyAttempt: number;
  outcome: RequestOutcome;
}

/** One execution: what the target's "database" saw. */
export interface AppliedRequest {
  readonly index: number;
  readonly key: string | undefined;
  readonly identity: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

/** Chooses the fault for a request; `undefined` → the default success. */
export type Script = (request: RecordedRequest) => Fault | undefined;

export interface FaultTargetOptions {
  /** Header carrying the key (default `idempotency-key`). */
  readonly idempotencyHeader?: string;
  /** Set false to apply every request, keyed or not (a target that ignores keys). Default true. */
  readonly honourIdempotency?: boolean;
  /** The business identity used to count duplicates. Default: {@link bodyIdentity}. */
  readonly identify?: (request: RecordedRequest) => string | undefined;
  /** Credentials every request must carry; none by default. */
  readonly auth?: TargetAuth;
  readonly script?: Script;
}

export interface FaultTargetStats {
  readonly requests: number;
  readonly applied: number;
  readonly replays: number;
  /** Distinct idempotency keys received. */
  readonly distinctKeys: number;
  /** Applied requests whose business identity had already been applied. */
  readonly duplicates: number;
  /** Distinct business identities applied. */
  readonly identities: number;
  /** Requests answered 401 for missing or wrong credentials. */
  readonly unauthorized: number;
  /** Requests answered 409 because another request with the same key was still in flight. */
  readonly conflicts: number;
}

export interface FaultTarget {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  /** Every request received, in arrival order (live view). */
  readonly requests: readonly RecordedRequest[];
  /** Every execution, in order (live view). */
  readonly applied: readonly AppliedRequest[];
  /** Replaces the script for requests that arrive from now on. */
  script(fn: Script | undefined): void;
  /** The credentials required now. */
  readonly auth: TargetAuth | undefined;
  /** Replaces the credentials required from now on (a rotation at the API). */
  setAuth(auth: TargetAuth | undefined): void;
  /** How often each business identity was applied. */
  appliedCount(identity: string): number;
  /** Every request (attempt) that carried this business identity, in arrival order. */
  requestsOf(identity: string): RecordedRequest[];
  stats(): FaultTargetStats;
  /** Closes the server, dropping hanging and slow requests. */
  close(): Promise<void>;
}

/** Fault constructors. */
export const faults = {
  status: (status: number, headers?: Record<string, string>, body?: string): Fault => ({
    kind: 'status',
    status,
    ...(headers ? { headers } : {}),
    ...(body === undefined ? {} : { body }),
  }),
  /** 429 with `Retry-After` (seconds, or an HTTP-date string). */
  throttle: (retryAfter: number | string): Fault => ({ kind: 'status', status: 429, headers: { 'retry-after': String(retryAfter) } }),
  /** 503, with `Retry-After` when given. */
  unavailable: (retryAfter?: number | string): Fault => ({
    kind: 'status',
    status: 503,
    ...(retryAfter === undefined ? {} : { headers: { 'retry-after': String(retryAfter) } }),
  }),
  redirect: (location: string, status = 302): Fault => ({ kind: 'status', status, headers: { location } }),
  respond: (status: number, body: string, headers?: Record<string, string>): Fault => ({
    kind: 'respond',
    status,
    body,
    ...(headers ? { headers } : {}),
  }),
  /** A 2xx that claims JSON but is not. */
  malformedJson: (status = 200): Fault => ({
    kind: 'respond',
    status,
    body: '{"id": "obj_',
    headers: { 'content-type': 'application/json' },
  }),
  hang: (): Fault => ({ kind: 'hang' }),
  slow: (delayMs: number, then?: Fault): Fault => ({ kind: 'slow', delayMs, ...(then ? { then } : {}) }),
  slowBody: (delayMs: number): Fault => ({ kind: 'slowBody', delayMs }),
  reset: (): Fault => ({ kind: 'reset' }),
  lostResponse: (): Fault => ({ kind: 'lostResponse' }),
} as const;

/** A script that gives the n-th request overall the n-th fault, then the default success. */
export function inOrder(...sequence: Fault[]): Script {
  return (request) => sequence[request.index];
}

/** A script that gives the n-th request of each key the n-th fault, then the default success. */
export function perKey(...sequence: Fault[]): Script {
  return (request) => sequence[request.keyAttempt - 1];
}

interface Saved {
  readonly fingerprint: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Starts a target on 127.0.0.1 with a free port. */
export async function startFaultTarget(options: FaultTargetOptions = {}): Promise<FaultTarget> {
  const keyHeader = (options.idempotencyHeader ?? 'idempotency-key').toLowerCase();
  const honour = options.honourIdempotency ?? true;
  const requests: RecordedRequest[] = [];
  const applied: AppliedRequest[] = [];
  const saved = new Map<string, Saved>();
  const inFlight = new Set<string>();
  const keyCounts = new Map<string, number>();
  const identities = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  let duplicates = 0;
  let replays = 0;
  let unauthorizedCount = 0;
  let conflicts = 0;
  let script = options.script;
  let auth = options.auth;
  const identify = options.identify ?? bodyIdentity;
  const appliedBy = new Map<string, number>();

  const later = (delayMs: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, delayMs);
    timers.add(timer);
  };

  const apply = (record: RecordedRequest): void => {
    const identity = identify(record);
    if (identity !== undefined) {
      if (identities.has(identity)) duplicates++;
      identities.add(identity);
      appliedBy.set(identity, (appliedBy.get(identity) ?? 0) + 1);
    }
    applied.push({ index: record.index, key: record.key, identity, method: record.method, path: record.path, body: record.body });
    record.outcome = 'applied';
  };

  const send = (res: ServerResponse, status: number, headers: Readonly<Record<string, string>>, body: string): void => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };

  const json = { 'content-type': 'application/json' };
  const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
    send(res, status, json, JSON.stringify(body));
  };

  const execute = (record: RecordedRequest, res: ServerResponse, fault: Fault | undefined): void => {
    if (!authorized(auth, record.headers)) {
      record.outcome = 'unauthorized';
      unauthorizedCount++;
      send(res, 401, { ...json, 'www-authenticate': 'Bearer error="invalid_token"' }, JSON.stringify({ error: { type: 'authentication_error' } }));
      return;
    }
    const fingerprint = `${record.method} ${record.path}\n${record.body}`;
    const key = honour ? record.key : undefined;
    if (key !== undefined) {
      const previous = saved.get(key);
      if (previous) {
        if (previous.fingerprint !== fingerprint) {
          record.outcome = 'mismatch';
          sendJson(res, 422, {
            error: {
              type: 'idempotency_error',
              message: 'Keys for idempotent requests can only be used with the same parameters they were first used with.',
            },
          });
          return;
        }
        record.outcome = 'replayed';
        replays++;
        send(res, previous.status, { ...previous.headers, 'idempotent-replayed': 'true' }, previous.body);
        return;
      }
      if (inFlight.has(key)) {
        record.outcome = 'conflict';
        conflicts++;
        sendJson(res, 409, { error: { type: 'idempotency_error', code: 'idempotency_key_in_use' } });
        return;
      }
    }
    const response =
      fault?.kind === 'respond'
        ? { status: fault.status, headers: fault.headers ?? {}, body: fault.body }
        : { status: 200, headers: json, body: JSON.stringify({ id: `obj_${record.index}`, received: true }) };
    apply(record);
    if (key !== undefined) saved.set(key, { fingerprint, ...response });
    if (fault?.kind === 'lostResponse') {
      res.socket?.resetAndDestroy();
    } else if (fault?.kind === 'slowBody') {
      res.writeHead(response.status, { 'content-length': Buffer.byteLength(response.body), ...response.headers });
      res.write(response.body.slice(0, 1));
      later(fault.delayMs, () => {
        if (!res.destroyed) res.end(response.body.slice(1));
      });
    } else {
      send(res, response.status, response.headers, response.body);
    }
  };

  const handle = (record: RecordedRequest, res: ServerResponse, fault: Fault | undefined): void => {
    switch (fault?.kind) {
      case 'status':
        record.outcome = 'fault';
        send(res, fault.status, fault.headers ?? {}, fault.body ?? '');
        return;
      case 'hang':
        record.outcome = 'fault';
        return;
      case 'reset':
        record.outcome = 'fault';
        res.socket?.resetAndDestroy();
        return;
      case 'slow': {
        // Stripe-like: a slow answer holds its key, so a concurrent retry with it gets a 409.
        const key = honour && fault.then?.kind !== 'status' ? record.key : undefined;
        if (key !== undefined && !saved.has(key)) inFlight.add(key);
        later(fault.delayMs, () => {
          if (key !== undefined) inFlight.delete(key);
          handle(record, res, fault.then);
        });
        return;
      }
      default:
        execute(record, res, fault);
    }
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const key = headers[keyHeader];
      const keyAttempt = key === undefined ? 1 : (keyCounts.get(key) ?? 0) + 1;
      if (key !== undefined) keyCounts.set(key, keyAttempt);
      const record: RecordedRequest = {
        index: requests.length,
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
        remotePort: req.socket.remotePort,
        key,
        keyAttempt,
        outcome: 'pending',
      };
      requests.push(record);
      handle(record, res, script?.(record));
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
    requests,
    applied,
    script(fn) {
      script = fn;
    },
    get auth() {
      return auth;
    },
    setAuth(next) {
      auth = next;
    },
    appliedCount(identity) {
      return appliedBy.get(identity) ?? 0;
    },
    requestsOf(identity) {
      return requests.filter((q) => identify(q) === identity);
    },
    stats() {
      return { requests: requests.length, applied: applied.length, replays, distinctKeys: keyCounts.size, duplicates, identities: identities.size, unauthorized: unauthorizedCount, conflicts };
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
