/**
 * The HTTP implementation of {@link Deliverer}, on undici `Pool`s: one pool per origin, keep-alive,
 * pipelining 1, a bounded number of connections, the SSRF guard as the pool's connector, no
 * redirect handling (undici's Pool follows none without the redirect interceptor), a per-attempt
 * deadline and a bounded body read.
 *
 * Lifecycle: construct (no I/O; pools are created on first use), `deliver()` any number of times
 * concurrently, `close()` once at shutdown (waits for in-flight attempts, which their deadlines
 * bound).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import type { Clock, Logger } from '../observability/index.ts';
import type { Deliverer, DeliveryRequest, DeliveryResponse } from './deliverer.ts';
import { mergeHeaders } from './deliverer.ts';
import { AttemptHandler } from './attempt-handler.ts';
import { encodeBody, type EncodedBody } from './encoding.ts';
import {
  DeliveryAbortedError,
  DeliveryConfigError,
  DeliveryNetworkError,
  DeliveryTimeoutError,
  FerryDeliveryError,
  InvalidDeliveryRequestError,
  type TimeoutPhase,
} from './errors.ts';
import { createGuardedConnector, type Resolver } from './guarded-connect.ts';
import { CheckedUrls } from './checked-urls.ts';
import type { AddressPolicy } from './ssrf-guard.ts';

/** Process-wide settings of the {@link HttpDeliverer}; the SSRF policy is the operator's. */
export interface HttpDelivererOptions {
  /** The SSRF policy every attempt is checked against (URL, DNS answer and socket). */
  readonly policy: AddressPolicy;
  readonly clock: Clock;
  readonly logger: Logger;
  /** DNS; tests inject a fake. Default: the system resolver. */
  readonly resolve?: Resolver;
  /** Response bodies are cut here (default 64 KiB): enough for errors and schemas, bounded memory. */
  readonly maxResponseBytes?: number;
  /** Connections per origin (default 32). Attempts beyond it queue in the pool. */
  readonly connectionsPerOrigin?: number;
  /** Bound on TCP connect + TLS handshake (default 10 s); the attempt deadline also applies. */
  readonly connectTimeoutMs?: number;
  /** Idle keep-alive connections close after this (default 4 s, undici's default). */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Pools kept at once (default 256). Templated hosts could otherwise grow them without bound;
   * the least recently used pool is closed beyond this.
   */
  readonly maxOrigins?: number;
  /** Default `ferry`. */
  readonly userAgent?: string;
  /** Extra CAs for targets behind a private PKI; verification is never turned off. */
  readonly ca?: string | readonly string[];
}

/** Connection counts of one origin's pool (for metrics and tests). */
export interface OriginStats {
  readonly origin: string;
  readonly connected: number;
  readonly free: number;
  readonly pending: number;
  readonly running: number;
}

const DEFAULT_IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** A {@link Deliverer} over undici pools. One per process is enough; it is safe to share. */
export class HttpDeliverer implements Deliverer {
  private readonly options: HttpDelivererOptions;
  private readonly maxResponseBytes: number;
  private readonly maxOrigins: number;
  private readonly connectionsPerOrigin: number;
  private readonly connector: ReturnType<typeof createGuardedConnector>;
  /** Insertion order is recency order: a used pool is moved to the end. */
  private readonly pools = new Map<string, Pool>();
  /** The origin used last: it is the most recent already, so its pool need not be moved. */
  private lastOrigin: string | undefined;
  /** URLs that passed the SSRF URL check; the connector still judges every connection. */
  private readonly checkedUrls: CheckedUrls;
  private closed = false;

  /** @throws DeliveryConfigError for non-positive limits. */
  constructor(options: HttpDelivererOptions) {
    this.options = options;
    this.maxResponseBytes = positive(options.maxResponseBytes ?? 64 * 1024, 'maxResponseBytes');
    this.maxOrigins = positive(options.maxOrigins ?? 256, 'maxOrigins');
    this.connectionsPerOrigin = positive(options.connectionsPerOrigin ?? 32, 'connectionsPerOrigin');
    this.checkedUrls = new CheckedUrls(options.policy);
    this.connector = createGuardedConnector({
      policy: options.policy,
      ...(options.resolve ? { resolve: options.resolve } : {}),
      connectTimeoutMs: positive(options.connectTimeoutMs ?? 10_000, 'connectTimeoutMs'),
      ...(options.ca === undefined ? {} : { tls: { ca: typeof options.ca === 'string' ? options.ca : [...options.ca] } }),
    });
  }

  /**
   * Sends one attempt; see {@link Deliverer}. The URL is checked before anything is dialled (an
   * IP literal in a denied range never opens a socket); the host's addresses are checked when the
   * pool connects. The attempt deadline covers queueing in the pool, connect, headers and body.
   */
  async deliver(request: DeliveryRequest): Promise<DeliveryResponse> {
    const { origin, path } = this.checkedUrls.check(request.url);
    if (this.closed) throw new DeliveryAbortedError(origin);
    if (request.signal?.aborted) throw new DeliveryAbortedError(origin, { cause: request.signal.reason });
    if (!(request.timeoutMs > 0)) throw new DeliveryConfigError('timeout', 'must be > 0');
    const encoded: EncodedBody | undefined = request.body && encodeBody(request.body.value, request.body.encoding);
    const headers = mergeHeaders(
      { 'user-agent': this.options.userAgent ?? 'ferry' },
      encoded && { 'content-type': encoded.contentType },
      request.headers,
      request.idempotencyKey === undefined
        ? undefined
        : { [request.idempotencyHeader ?? DEFAULT_IDEMPOTENCY_HEADER]: request.idempotencyKey },
    );

    const attempt = new AttemptHandler<FerryDeliveryError>(this.maxResponseBytes);
    const cancelTimer = this.options.clock.setTimer(() => {
      attempt.abort(new DeliveryTimeoutError(origin, request.timeoutMs, 'attempt'));
    }, request.timeoutMs);
    const callerSignal = request.signal;
    const onCallerAbort = (): void => {
      attempt.abort(new DeliveryAbortedError(origin, { cause: callerSignal?.reason }));
    };
    callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const started = this.options.clock.now();
    try {
      this.pool(origin).dispatch(
        {
          path,
          method: request.method,
          headers,
          body: encoded?.payload ?? null,
          // undici's own timers only as a backstop, set later than the deadline above so that the
          // deadline (which also covers queueing and connecting) is what normally fires.
          headersTimeout: request.timeoutMs + 1000,
          bodyTimeout: request.timeoutMs + 1000,
        },
        attempt,
      );
      const response = await attempt.done;
      return {
        status: response.status,
        headers: flattenHeaders(response.headers),
        body: response.body,
        truncated: response.truncated,
        durationMs: this.options.clock.now() - started,
      };
    } catch (error) {
      // Our own deadline or the caller's abort: the reason we aborted with says which.
      if (attempt.reason) throw attempt.reason;
      throw translateError(origin, request.timeoutMs, error);
    } finally {
      cancelTimer();
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /** Connection counts per origin. */
  stats(): readonly OriginStats[] {
    return [...this.pools].map(([origin, pool]) => {
      const s = pool.stats;
      return { origin, connected: s.connected, free: s.free, pending: s.pending, running: s.running };
    });
  }

  /** Stops accepting attempts and closes every pool once its in-flight attempts have finished. */
  async close(): Promise<void> {
    this.closed = true;
    this.lastOrigin = undefined;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close()));
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (pool) {
      if (origin !== this.lastOrigin) {
        this.pools.delete(origin);
        this.pools.set(origin, pool);
        this.lastOrigin = origin;
      }
      return pool;
    }
    this.lastOrigin = origin;
    pool = new Pool(origin, {
      connect: this.connector,
      connections: this.connectionsPerOrigin,
      pipelining: 1,
      keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 4_000,
      // HTTP/1.1 only: `connections` is then the real bound on concurrent attempts per origin.
      allowH2: false,
    });
    this.pools.set(origin, pool);
    for (const [oldest, stale] of this.pools) {
      if (this.pools.size <= this.maxOrigins) break;
      this.pools.delete(oldest);
      stale.close().catch((error: unknown) => {
        this.options.logger.warn({ err: error, origin: oldest }, 'closing an evicted delivery pool failed');
      });
    }
    return pool;
  }
}

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  // Keys, not entries: no pair arrays allocated for every response.
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

const timeoutPhases: Readonly<Record<string, TimeoutPhase>> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  UND_ERR_HEADERS_TIMEOUT: 'headers',
  UND_ERR_BODY_TIMEOUT: 'body',
};

/** undici and node:net errors → Ferry errors, by code (never by message). */
function translateError(origin: string, timeoutMs: number, error: unknown): FerryDeliveryError {
  if (error instanceof FerryDeliveryError) return error; // from the guarded connector
  if (error instanceof Error && error.cause instanceof FerryDeliveryError) return error.cause;
  const code = errorCode(error);
  const phase = code === undefined ? undefined : timeoutPhases[code];
  if (phase) return new DeliveryTimeoutError(origin, timeoutMs, phase, code, { cause: error });
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED' || code === 'ERR_INVALID_CHAR') {
    return new InvalidDeliveryRequestError(error instanceof Error ? error.message : String(error), code, { cause: error });
  }
  return new DeliveryNetworkError(origin, code, error instanceof Error ? error.message : String(error), {
    cause: error,
  });
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

function positive(value: number, option: string): number {
  if (!(Number.isFinite(value) && value > 0)) throw new DeliveryConfigError(option, 'must be > 0');
  return value;
}
