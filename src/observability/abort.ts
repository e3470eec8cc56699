/**
 * Waiting on work that may outlive the caller's interest: `untilAborted` settles as soon as
 * `signal` aborts, whether or not the work does. The work is abandoned, not cancelled — a caller
 * that can cancel it (close an iterator, abort a request) does so itself.
 */

/** `work`'s outcome, or `{ aborted: true }` as soon as `signal` aborts (the work is abandoned). */
export async function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<{ readonly aborted: false; readonly value: T } | { readonly aborted: true }> {
  if (signal.aborted) return { aborted: true };
  let onAbort = (): void => {};
  const aborted = new Promise<{ readonly aborted: true }>((resolve) => {
    onAbort = () => {
      resolve({ aborted: true });
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work.then((value) => ({ aborted: false as const, value })), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
