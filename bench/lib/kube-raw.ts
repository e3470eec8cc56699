/**
 * The thinnest client of the Kubernetes API a benchmark can use: one undici `Pool` with
 * keep-alive connections and the kubeconfig's TLS material, JSON in and out.
 *
 * Why not @kubernetes/client-node's generated APIs: they open a fresh agent (a new TLS
 * handshake) per request, so a "raw limit" measured through them would include client overhead
 * that the API server does not impose. The floor must measure the servers, not a client.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { Pool } from 'undici';

export class KubeRequestError extends Error {
  override readonly name = 'KubeRequestError';
  readonly status: number;
  readonly body: string;

  constructor(method: string, path: string, status: number, body: string) {
    super(`${method} ${path}: HTTP ${status}: ${body.slice(0, 300)}`);
    this.status = status;
    this.body = body;
  }
}

/** Where the API server is and how to authenticate: what a kubeconfig context boils down to. */
export interface KubeEndpoint {
  readonly server: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
}

export interface RawKubeOptions {
  /** Keep-alive connections to the API server; size it to the parallelism you drive. */
  readonly connections: number;
}

const MAX_429 = 30;

function retryAfterMs(header: string | string[] | undefined): number {
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 10) * 1000 : 1000;
}

export class RawKube {
  /** 429 answers retried so far. */
  throttled = 0;
  private readonly pool: Pool;
  private readonly headers: Record<string, string>;

  private constructor(pool: Pool, headers: Record<string, string>) {
    this.pool = pool;
    this.headers = headers;
  }

  /** Reads the server URL and TLS material of the kubeconfig's current context. */
  static async endpointOf(kubeConfig: KubeConfig): Promise<KubeEndpoint> {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const tls: { ca?: unknown; cert?: unknown; key?: unknown } = {};
    await kubeConfig.applyToHTTPSOptions(tls as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
    const pem = (v: unknown): string | undefined => (Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : undefined);
    const token = kubeConfig.getCurrentUser()?.token;
    return { server: cluster.server, ca: pem(tls.ca), cert: pem(tls.cert), key: pem(tls.key), ...(token ? { token } : {}) };
  }

  static async create(kubeConfig: KubeConfig, options: RawKubeOptions): Promise<RawKube> {
    return RawKube.connect(await RawKube.endpointOf(kubeConfig), options);
  }

  /** From an endpoint alone: no @kubernetes/client-node in the process (see cache-floor-process.ts). */
  static connect(endpoint: KubeEndpoint, options: RawKubeOptions): RawKube {
    const headers: Record<string, string> = { accept: 'application/json', ...(endpoint.token ? { authorization: `Bearer ${endpoint.token}` } : {}) };
    const pool = new Pool(endpoint.server, {
      connections: options.connections,
      keepAliveTimeout: 60_000,
      connect: { ca: endpoint.ca, cert: endpoint.cert, key: endpoint.key },
    });
    return new RawKube(pool, headers);
  }

  /**
   * Sends one request; resolves with the parsed JSON body, throws KubeRequestError on non-2xx.
   * A 429 (the API server's "storage is (re)initializing" right after a CRD is established, or
   * its max-in-flight limit) is retried after its Retry-After, up to MAX_429 times, and counted
   * in `throttled` so a benchmark can report that the server pushed back.
   */
  async request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const res = await this.pool.request({
        method,
        path,
        headers: body === undefined ? this.headers : { ...this.headers, 'content-type': contentType },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.body.text();
      if (res.statusCode === 429 && attempt < MAX_429) {
        this.throttled++;
        await sleep(retryAfterMs(res.headers['retry-after']));
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) throw new KubeRequestError(method, path, res.statusCode, text);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    }
  }

  /**
   * GET of a streaming endpoint (a watch): yields its body line by line until the server ends
   * it or `signal` aborts. Holds one of the pool's connections while it runs.
   */
  async *lines(path: string, signal: AbortSignal): AsyncGenerator<string> {
    const res = await this.pool.request({ method: 'GET', path, headers: this.headers, signal });
    if (res.statusCode !== 200) {
      throw new KubeRequestError('GET', path, res.statusCode, await res.body.text());
    }
    const reader = createInterface({ input: res.body, crlfDelay: Infinity });
    try {
      for await (const line of reader) {
        if (line !== '') yield line;
      }
    } finally {
      reader.close();
      res.body.destroy();
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
