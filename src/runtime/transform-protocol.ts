/**
 * The messages between the transform pool (main thread) and its workers, and how a transform
 * error crosses the thread boundary. Structured clone keeps an Error's message but not its
 * class or fields, so errors travel as plain data and are rebuilt into the same typed errors
 * the in-thread evaluation throws.
 *
 * Pure; imported by both sides.
 */
import { TransformDepthError, TransformError, TransformTimeoutError } from './errors.ts';

/** Main → worker: evaluate `source` on `data` within `timeoutMs` and `maxDepth`. */
export interface EvaluateRequest {
  readonly id: number;
  readonly source: string;
  readonly data: unknown;
  readonly timeoutMs: number;
  readonly maxDepth: number;
}

export type SerializedTransformError =
  | {
      readonly kind: 'transform';
      readonly reason: TransformError['reason'];
      readonly message: string;
      readonly jsonataCode?: string;
      readonly position?: number;
      readonly token?: string;
    }
  | { readonly kind: 'timeout'; readonly timeoutMs: number; readonly elapsedMs: number }
  | { readonly kind: 'depth'; readonly maxDepth: number };

/** Worker → main. `ready` once, after the worker has loaded its modules; then one reply per request. */
export type WorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly id: number; readonly value: unknown }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedTransformError };

/** What the worker sends for an error of the evaluation. Anything that is not a transform error becomes an `expression` one. */
export function serializeTransformError(err: unknown): SerializedTransformError {
  if (err instanceof TransformTimeoutError) return { kind: 'timeout', timeoutMs: err.timeoutMs, elapsedMs: err.elapsedMs };
  if (err instanceof TransformDepthError) return { kind: 'depth', maxDepth: err.maxDepth };
  if (err instanceof TransformError) {
    return {
      kind: 'transform',
      reason: err.reason,
      message: err.message,
      ...(err.jsonataCode === undefined ? {} : { jsonataCode: err.jsonataCode }),
      ...(err.position === undefined ? {} : { position: err.position }),
      ...(err.token === undefined ? {} : { token: err.token }),
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'transform', reason: 'expression', message: `transform expression failed: ${message}` };
}

/** The typed error a serialized one stands for. */
export function deserializeTransformError(e: SerializedTransformError): TransformError | TransformTimeoutError | TransformDepthError {
  switch (e.kind) {
    case 'timeout':
      return new TransformTimeoutError(e.timeoutMs, e.elapsedMs);
    case 'depth':
      return new TransformDepthError(e.maxDepth);
    case 'transform':
      return new TransformError(e.reason, e.message, {
        ...(e.jsonataCode === undefined ? {} : { jsonataCode: e.jsonataCode }),
        ...(e.position === undefined ? {} : { position: e.position }),
        ...(e.token === undefined ? {} : { token: e.token }),
      });
  }
}

/** True for a well-formed reply; a worker is our own code, but a malformed message must not crash the pool. */
export function isWorkerReply(value: unknown): value is WorkerReply {
  if (value === null || typeof value !== 'object') return false;
  const v = value as { type?: unknown; id?: unknown; error?: unknown };
  if (v.type === 'ready') return true;
  if (typeof v.id !== 'number') return false;
  if (v.type === 'result') return 'value' in v;
  return v.type === 'error' && v.error !== null && typeof v.error === 'object';
}
