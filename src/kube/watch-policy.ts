/**
 * The watcher's restart policy: what an ended watch leads to. Pure, so it is tested without a
 * server.
 */

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

/** Maps what client-node's `Watch` reports to a restart reason. */
export function classifyWatchError(err: unknown): RestartReason {
  if (err && typeof err === 'object') {
    if ('statusCode' in err && err.statusCode === 410) return 'gone';
    if ('name' in err && err.name === 'TimeoutError') return 'timeout';
  }
  return 'error';
}
