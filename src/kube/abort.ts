/**
 * A child abort signal with a timeout on the injected clock.
 *
 * Why not `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: `AbortSignal.timeout` runs on
 * real time (tests use a ManualClock), and combining a long-lived parent (a watcher's or an
 * elector's lifetime signal) with a fresh signal every few seconds has leaked memory in some
 * Node versions. A listener removed in `dispose()` leaves nothing behind.
 */
import type { Clock } from '../observability/index.ts';

export interface ScopedSignal {
  readonly signal: AbortSignal;
  /** Cancels the timer and detaches from the parent. Call when the operation has finished. */
  dispose(): void;
}

export function scopedSignal(clock: Clock, timeoutMs: number, onTimeout: () => Error, parent?: AbortSignal): ScopedSignal {
  const controller = new AbortController();
  const onParentAbort = (): void => {
    controller.abort(parent?.reason);
  };
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  const cancel = clock.setTimer(() => {
    controller.abort(onTimeout());
  }, timeoutMs);
  return {
    signal: controller.signal,
    dispose() {
      cancel();
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}
