/**
 * The watcher's restart policy: what an ended watch leads to. Pure, so it is tested without a
 * server.
 */
import { NotFoundError } from './errors.ts';

/** Why a watch ended and was restarted (the `reason` label of `ferry_watch_restarts_total`). */
export type RestartReason = 'gone' | 'error' | 'closed' | 'watchdog' | 'timeout';

/** How one watch attempt ended. */
export type WatchEnd = RestartReason | 'expired' | 'stopped';

/**
 * Decides what the watch loop does after an attempt ended. Pure.
 * `healthyForMs` is how long the stream had been up without a failure (undefined if it never
 * came up).
 */
export function planRestart(
  end: WatchEnd,
  healthyForMs: number | undefined,
  resetAfterMs: number,
): { readonly relist: boolean; readonly backoff: boolean; readonly resetBackoff: boolean; readonly count: boolean } {
  const resetBackoff = healthyForMs !== undefined && healthyForMs >= resetAfterMs;
  switch (end) {
    case 'stopped':
      return { relist: false, backoff: false, resetBackoff: false, count: false };
    case 'expired':
      return { relist: false, backoff: false, resetBackoff: false, count: false };
    case 'gone':
      return { relist: true, backoff: true, resetBackoff, count: true };
    case 'error':
    case 'closed':
    case 'watchdog':
    case 'timeout':
      return { relist: false, backoff: true, resetBackoff, count: true };
  }
}

/**
 * Names a stream the server closed without an error: `expired` if it lasted (nearly) the
 * `timeoutSeconds` we asked for — the protocol working — else `closed` (ended early: a restart
 * with backoff). The 10 % margin absorbs the server counting from when it received the request.
 */
export function classifyCleanClose(elapsedMs: number, timeoutSeconds: number): 'expired' | 'closed' {
  return elapsedMs >= timeoutSeconds * 1000 * 0.9 ? 'expired' : 'closed';
}

/**
 * Whether the collection is served: `unknown` before the first list answered, `not-served` after
 * the API server answered 404 for the collection itself (its CRD is not installed, was deleted,
 * or — for a moment after an API server restart — is not registered yet).
 */
export type ServedState = 'unknown' | 'served' | 'not-served';

/** True when a list or watch failed because the API server does not serve the collection (404). */
export function isNotServed(err: unknown): boolean {
  if (err instanceof NotFoundError) return true;
  return !!err && typeof err === 'object' && 'statusCode' in err && err.statusCode === 404;
}

/**
 * What a change of the served state is worth saying, Pure. Never served → an error (the
 * operator is installed incompletely); served before → a warning (the cache is kept: a 404 for
 * a moment after an API server restart must not look like every object was deleted); served
 * again → info. `undefined`: no change worth a line.
 */
export function servedTransition(previous: ServedState, next: ServedState): 'error' | 'warn' | 'info' | undefined {
  if (previous === next) return undefined;
  if (next === 'not-served') return previous === 'served' ? 'warn' : 'error';
  return previous === 'not-served' ? 'info' : undefined;
}

/** Maps what client-node's `Watch` reports to a restart reason. */
export function classifyWatchError(err: unknown): RestartReason {
  if (err && typeof err === 'object') {
    if ('statusCode' in err && err.statusCode === 410) return 'gone';
    if ('name' in err && err.name === 'TimeoutError') return 'timeout';
  }
  return 'error';
}
