/**
 * The one raw HTTP path to the API server inside src/kube: list pages, leases, status patches and
 * Events all go through {@link KubeHttp.request}, so authentication, timeouts and error
 * translation are written once.
 *
 * Why not the generated API classes of @kubernetes/client-node: they need one class per API
 * group and know nothing of custom resources' subresources by path; their errors carry the body
 * as a string. A request by path is what the watcher needs anyway (it is given a path).
 *
 * Authentication is client-node's own (`KubeConfig.applySecurityAuthentication`: client
 * certificates, bearer tokens, exec plugins), applied per request so rotated tokens are picked up.
 */
import { HttpMethod, RequestContext, type KubeConfig } from './client-node.ts';
import { getGlobalDispatcher } from 'undici';
import type { Clock } from '../observability/index.ts';
import { scopedSignal } from './abort.ts';
import { KubeConfigError, MalformedResponseError, UnavailableError, errorFromStatus, type KubeStatus } from './errors.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface KubeRequest {
  readonly method: Method;
  /** Path below the server URL, e.g. `/api/v1/namespaces/default/configmaps`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Serialised as JSON. */
  readonly body?: unknown;
  /** Defaults to `application/json` when there is a body. */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** Per-request timeout; defaults to the client's. */
  readonly timeoutMs?: number;
  /**
   * `discard`: a successful answer's body is drained unread and `request` resolves `undefined`
   * (an error's body is still read for its Status). For writes whose caller does not use the
   * stored object: the API server answers a patch with the whole object, and parsing it was a
   * visible share of the controller's CPU at a thousand objects.
   */
  readonly response?: 'json' | 'discard';
}

export const MERGE_PATCH = 'application/merge-patch+json';

const methods = {
  GET: HttpMethod.GET,
  POST: HttpMethod.POST,
  PUT: HttpMethod.PUT,
  PATCH: HttpMethod.PATCH,
  DELETE: HttpMethod.DELETE,
} as const;

/**
 * Sends one request and returns the parsed JSON body.
 *
 * Errors: a non-2xx answer → the matching {@link KubeApiError} subclass (see `errorFromStatus`);
 * no answer (connection refused, reset, timeout) → {@link UnavailableError}; aborted by the
 * caller's signal → the signal's reason is rethrown untranslated, so callers can tell "I stopped"
 * from "it failed".
 */
export class KubeHttp {
  private readonly kubeConfig: KubeConfig;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  /**
   * The first dispatcher client-node built, kept for every later request: client-node builds a
   * fresh agent (and so a fresh TLS handshake) per request, which costs ~10% of the controller's
   * CPU at scale. Its TLS settings come from the kubeconfig, which this process loads once;
   * credentials that change (tokens) travel in headers, which are rebuilt per request.
   * `null`: client-node needs none (plain settings), so undici's global one serves.
   */
  private dispatcher: NonNullable<ReturnType<RequestContext['getDispatcher']>> | null | undefined;

  constructor(options: { kubeConfig: KubeConfig; clock: Clock; timeoutMs?: number }) {
    this.kubeConfig = options.kubeConfig;
    this.clock = options.clock;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  async request<T>(req: KubeRequest): Promise<T> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new KubeConfigError('the kubeconfig has no current cluster');
    const info = { method: req.method, path: req.path };
    const url = new URL(cluster.server.replace(/\/+$/, '') + req.path);
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const ctx = new RequestContext(url.toString(), methods[req.method]);
    try {
      await this.kubeConfig.applySecurityAuthentication(ctx);
    } catch (err) {
      // Exec plugins and token files can fail transiently (a plugin timing out, a token being
      // rotated); the caller's retry policy decides, so this is a retryable failure.
      throw new UnavailableError(`${req.method} ${req.path}: could not obtain credentials`, { ...info, cause: err });
    }
    const headers: Record<string, string> = { ...ctx.getHeaders(), accept: 'application/json' };
    if (req.body !== undefined) headers['content-type'] = req.contentType ?? 'application/json';

    // Our own timeout, on the injected clock, combined with the caller's signal.
    const scope = scopedSignal(
      this.clock,
      req.timeoutMs ?? this.timeoutMs,
      () => new UnavailableError(`${req.method} ${req.path}: timed out`, info),
      req.signal,
    );
    // client-node handed out a new agent for this request; the kept one serves it instead. The new
    // one has not connected, so it holds no socket or timer and is left to the GC: closing it
    // cost an error object and a chain of promises per request.
    this.dispatcher ??= ctx.getDispatcher() ?? null;
    const dispatcher = this.dispatcher ?? getGlobalDispatcher();

    let status: number;
    let text: string;
    let retryAfter: string | undefined;
    try {
      // undici's request, not fetch: the WHATWG layer (Request, Headers, dependent signals,
      // body streams) cost more CPU per call than the HTTP exchange at a thousand objects.
      const res = await dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
        body: req.body === undefined ? undefined : JSON.stringify(req.body),
        signal: scope.signal,
      });
      status = res.statusCode;
      const header = res.headers['retry-after'];
      retryAfter = Array.isArray(header) ? header[0] : header;
      if (req.response === 'discard' && status >= 200 && status < 300) {
        await res.body.dump();
        return undefined as T;
      }
      text = await res.body.text();
    } catch (err) {
      // The caller's abort is passed through as is; our timeout is an UnavailableError.
      if (req.signal?.aborted) throw req.signal.reason;
      if (scope.signal.aborted) throw scope.signal.reason;
      throw new UnavailableError(`${req.method} ${req.path}: ${err instanceof Error ? err.message : 'request failed'}`, {
        ...info,
        cause: err,
      });
    } finally {
      scope.dispose();
    }

    if (status < 200 || status >= 300) {
      throw errorFromStatus(status, parseStatus(text), info, parseRetryAfter(retryAfter));
    }
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new MalformedResponseError(`${req.method} ${req.path}: the response is not JSON`, { cause: err });
    }
  }
}

function parseStatus(text: string): KubeStatus | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && (parsed as KubeStatus).kind === 'Status') return parsed;
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): the status code alone must do.
  }
  return undefined;
}

/** Retry-After in seconds (the only form the API server sends); dates are ignored. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value.trim());
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}
