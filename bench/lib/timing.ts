/**
 * Monotonic timing and bounded parallelism for benchmarks.
 *
 * Durations come from `performance.now()` (monotonic, sub-millisecond), never from `Date.now()`,
 * which can jump when the wall clock is adjusted mid-run.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** Milliseconds on a monotonic clock; only differences mean anything. */
export function now(): number {
  return performance.now();
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight, in item order, and returns the
 * results in item order. The first failure stops new calls from starting; calls already in
 * flight finish, then that failure is thrown.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer ≥ 1, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal });
}
