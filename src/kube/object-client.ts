/**
 * Typed reads and writes of single objects, for reconcilers: read an object, patch its status,
 * patch its metadata (finalizers) under a resourceVersion precondition.
 *
 * Errors: every method throws the typed errors of errors.ts — `NotFoundError`, `ConflictError`
 * (a resourceVersion precondition failed: re-read and retry), `InvalidError` (422, the server
 * rejected the content; not retryable), `GoneError`, `UnavailableError` (network, 429, 5xx;
 * retryable) — and the caller's abort reason when its signal aborts.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../observability/index.ts';
import { isNotFound } from './errors.ts';
import { KubeHttp, MERGE_PATCH } from './http.ts';
import { resourcePath, type KubeObject, type ObjectRef, type ResourceType } from './object.ts';

export interface ObjectClientOptions {
  readonly kubeConfig: KubeConfig;
  readonly clock: Clock;
  /** Recorded in managedFields for every write; default `ferry`. */
  readonly fieldManager?: string;
  /** Per-request timeout; default 30 s. */
  readonly requestTimeoutMs?: number;
}

export interface WriteOptions {
  /**
   * Optimistic concurrency: the write fails with `ConflictError` unless the object still has
   * this resourceVersion. Use it whenever the patch replaces a list (finalizers, conditions)
   * computed from what you read.
   */
  readonly resourceVersion?: string;
  readonly signal?: AbortSignal;
}

/** A JSON object body (merge patches are objects). */
export type JsonObject = Readonly<Record<string, unknown>>;

/** Reads and writes single objects by reference; every failure is a typed error (see above). */
export class ObjectClient {
  private readonly http: KubeHttp;
  private readonly fieldManager: string;

  constructor(options: ObjectClientOptions) {
    this.http = new KubeHttp({ kubeConfig: options.kubeConfig, clock: options.clock, timeoutMs: options.requestTimeoutMs ?? 30_000 });
    this.fieldManager = options.fieldManager ?? 'ferry';
  }

  /** Reads one object from the API server (not the cache). Throws `NotFoundError` if absent. */
  get<T extends KubeObject>(ref: ObjectRef, signal?: AbortSignal): Promise<T> {
    return this.http.request<T>({ method: 'GET', path: resourcePath(ref, ref.namespace, ref.name), signal });
  }

  /** Lists a resource type in one namespace, or in all when `namespace` is undefined (one page, no watch). */
  async list<T extends KubeObject>(type: ResourceType, namespace?: string, signal?: AbortSignal): Promise<T[]> {
    const list = await this.http.request<{ readonly items?: T[] }>({ method: 'GET', path: resourcePath(type, namespace), signal });
    return list.items ?? [];
  }

  /** Creates an object; throws `AlreadyExistsError` if one with that name exists. */
  create<T extends KubeObject>(type: ResourceType, namespace: string | undefined, body: T, signal?: AbortSignal): Promise<T> {
    return this.http.request<T>({
      method: 'POST',
      path: resourcePath(type, namespace),
      query: { fieldManager: this.fieldManager },
      body,
      signal,
    });
  }

  /**
   * Applies a JSON merge patch (RFC 7386) to the object: keys set to `null` are removed, lists
   * are replaced whole. Returns the object as stored.
   */
  patchMerge<T extends KubeObject>(ref: ObjectRef, patch: JsonObject, options: WriteOptions = {}): Promise<T> {
    return this.patch<T>(ref, undefined, patch, options);
  }

  /**
   * Merge-patches the `/status` subresource with `{ status }`. Only status changes; spec and
   * metadata edits in the patch are ignored by the server. Returns the object as stored.
   */
  patchStatus<T extends KubeObject>(ref: ObjectRef, status: JsonObject, options: WriteOptions = {}): Promise<T> {
    return this.patch<T>(ref, 'status', { status }, options);
  }

  /** {@link patchStatus} without reading back the stored object. */
  async mergeStatus(ref: ObjectRef, status: JsonObject, options: WriteOptions = {}): Promise<void> {
    await this.patch<unknown>(ref, 'status', { status }, options, 'discard');
  }

  /**
   * Deletes an object. Resolves `true` if this call deleted it (or started its deletion when it
   * has finalizers) and `false` if it was already gone.
   */
  async delete(ref: ObjectRef, options: WriteOptions = {}): Promise<boolean> {
    const body =
      options.resourceVersion === undefined
        ? undefined
        : { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { resourceVersion: options.resourceVersion } };
    try {
      await this.http.request<unknown>({ method: 'DELETE', path: resourcePath(ref, ref.namespace, ref.name), body, signal: options.signal });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private patch<T>(ref: ObjectRef, subresource: string | undefined, patch: JsonObject, options: WriteOptions, response: 'json' | 'discard' = 'json'): Promise<T> {
    let body: JsonObject = patch;
    if (options.resourceVersion !== undefined) {
      // A merge patch carrying metadata.resourceVersion is rejected with 409 when it is stale:
      // the API server's documented optimistic-concurrency precondition for patches.
      const meta = (patch.metadata ?? {}) as JsonObject;
      body = { ...patch, metadata: { ...meta, resourceVersion: options.resourceVersion } };
    }
    return this.http.request<T>({
      method: 'PATCH',
      path: resourcePath(ref, ref.namespace, ref.name, subresource),
      query: { fieldManager: this.fieldManager },
      body,
      contentType: MERGE_PATCH,
      signal: options.signal,
      response,
    });
  }
}
