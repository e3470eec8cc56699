/**
 * Where the operator's log lines go: a file descriptor (stdout) behind a bounded buffer.
 *
 * pino's default destination is an asynchronous SonicBoom on fd 1 with no limit: when nobody
 * reads stdout (a stalled parent process, a stalled container-runtime log pipe) every line waits
 * in memory, and the process grows until the OOM killer ends it. Here the buffer is bounded:
 * a line that would take it past `maxBufferBytes` is dropped, counted (`onDrop`, the metric
 * `ferry_log_lines_dropped_total`) and reported on stderr — a different pipe — at most once per
 * `noticeIntervalMs`.
 *
 * Guarantees: memory held for unwritten lines stays below `maxBufferBytes` (plus the one chunk
 * being written); lines are written in order; none is dropped while stdout keeps up.
 * Caveats: a dropped line is gone; the stderr notice is best effort.
 */
import { pino, type DestinationStream } from 'pino';
import type { Clock } from './clock.ts';

/** Lines may wait for a slow stdout up to this many bytes (UTF-16 length, as SonicBoom counts). */
export const DEFAULT_LOG_BUFFER_BYTES = 16 * 1024 * 1024;
/** At most one "log lines dropped" notice on stderr per this interval. */
export const DEFAULT_DROP_NOTICE_MS = 30_000;

export interface LogDestinationOptions {
  /**
   * File descriptor to write to; stdout in the operator. It should be non-blocking (Node makes a
   * piped stdout so once `process.stdout` is opened): on a blocking pipe that nobody reads, a
   * write — and so {@link LogDestination.flushSync} — waits for ever whatever its budget.
   */
  readonly fd: number;
  readonly clock: Clock;
  readonly maxBufferBytes?: number;
  readonly noticeIntervalMs?: number;
  /** Called once per dropped line (the metric's `inc`). */
  readonly onDrop?: () => void;
  /** Writes one notice line; stderr by default. Never called more than once per interval. */
  readonly notice?: (line: string) => void;
}

export interface LogDestination {
  /** The stream to hand to {@link createLogger}. */
  readonly stream: DestinationStream;
  /** Lines dropped since creation. */
  readonly droppedLines: number;
  /**
   * Writes what is buffered, synchronously, giving up after `budgetMs` when the reader does not
   * drain (then the rest is discarded, a notice says so, and the destination is closed). Called
   * when the process exits; returns true when everything was written.
   */
  flushSync(budgetMs: number): boolean;
}

function isEagain(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EAGAIN' || code === 'EBUSY';
}

/** A bounded, asynchronous destination on `fd`; see the module comment. */
export function createLogDestination(options: LogDestinationOptions): LogDestination {
  const { clock } = options;
  const intervalMs = options.noticeIntervalMs ?? DEFAULT_DROP_NOTICE_MS;
  const notice =
    options.notice ??
    ((line: string) => {
      process.stderr.write(line);
    });
  let dropped = 0;
  let unreported = 0;
  let lastNoticeAt = Number.NEGATIVE_INFINITY;
  // SonicBoom retries EAGAIN (a full pipe) for ever; only a bounded exit flush stops that.
  let giveUpAt = Number.POSITIVE_INFINITY;
  let closed = false;

  const sonic = pino.destination({
    dest: options.fd,
    sync: false,
    minLength: 0,
    maxLength: options.maxBufferBytes ?? DEFAULT_LOG_BUFFER_BYTES,
    retryEAGAIN: () => !closed && clock.now() < giveUpAt,
  });
  sonic.on('drop', () => {
    dropped++;
    unreported++;
    options.onDrop?.();
    const now = clock.now();
    if (now - lastNoticeAt < intervalMs) return;
    lastNoticeAt = now;
    notice(`ferry: stdout is not being read fast enough; ${unreported} log line(s) dropped (${dropped} in all, see ferry_log_lines_dropped_total)\n`);
    unreported = 0;
  });
  // pino already turns EPIPE (the reader went away) into silence. After a flush gave up, the
  // write still in flight fails once more (EAGAIN, or EBADF once the fd is closed): expected.
  // Anything else is thrown, as an unhandled stream error would be.
  sonic.on('error', (err: unknown) => {
    if (closed || (err as { code?: unknown } | null)?.code === 'EPIPE') return;
    throw err;
  });

  return {
    stream: sonic,
    get droppedLines() {
      return dropped;
    },
    flushSync(budgetMs) {
      if (closed) return true;
      giveUpAt = clock.now() + budgetMs;
      try {
        sonic.flushSync();
        return true;
      } catch (err) {
        if (!isEagain(err)) throw err;
        closed = true;
        // Discards what is still buffered, so pino's own exit flush does not wait for ever.
        sonic.destroy();
        notice(`ferry: stdout is not being read; log lines still buffered after ${budgetMs} ms were discarded at exit\n`);
        return false;
      } finally {
        giveUpAt = Number.POSITIVE_INFINITY;
      }
    },
  };
}
