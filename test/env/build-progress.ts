/**
 * Progress lines for the slow steps of building the control-plane binaries. On a fresh machine
 * `go build k8s.io/kubernetes/cmd/kube-apiserver` runs for minutes without printing a word, which
 * looks exactly like a hang; this says what runs, how long it has been running (every 30 s) and
 * how long it took.
 */

/** Where progress lines go (`[ferry env] …` on stderr by default). */
export type ProgressLog = (line: string) => void;

/** How often a running step reports that it is still running. */
export const PROGRESS_EVERY_MS = 30_000;

/** `45s`, `1m05s`, `12m00s`: whole seconds, minutes once there are any. */
export function formatElapsed(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const minutes = Math.floor(seconds / 60);
  return minutes === 0 ? `${seconds}s` : `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
}

/**
 * Runs `step`, logging `<what>: still running, <elapsed> so far` every `everyMs` until it
 * settles, then `<what>: done in <elapsed>` (or `failed after <elapsed>`, and the error is
 * rethrown). Uses the global timers and `Date.now`, so tests drive it with mocked timers.
 */
export async function withProgress<T>(what: string, log: ProgressLog, step: () => Promise<T>, everyMs = PROGRESS_EVERY_MS): Promise<T> {
  const started = Date.now();
  const elapsed = (): string => formatElapsed(Date.now() - started);
  const timer = setInterval(() => {
    log(`${what}: still running, ${elapsed()} so far`);
  }, everyMs);
  try {
    const result = await step();
    log(`${what}: done in ${elapsed()}`);
    return result;
  } catch (err) {
    log(`${what}: failed after ${elapsed()}`);
    throw err;
  } finally {
    clearInterval(timer);
  }
}
