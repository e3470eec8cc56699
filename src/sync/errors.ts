/**
 * Why a SyncSchedule run (or one record of it) failed, as typed errors with a stable `code`.
 * A run-level error ends the run `Failed` (state up to the last complete group stays committed);
 * a record-level error sends that record to the failed-key index and the run goes on.
 */

export abstract class FerrySyncError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
}

/** A source page was not what the spec declared (not JSON, no array at recordsPath, no key). */
export class SourceResponseError extends FerrySyncError {
  override readonly name = 'SourceResponseError';
  readonly code = 'SYNC_SOURCE_RESPONSE';
  readonly retryable = false;
  readonly page: number;
  readonly url: string;
  constructor(page: number, url: string, detail: string) {
    super(`source page ${page} (${url}): ${detail}`);
    this.page = page;
    this.url = url;
  }
}

/** The source kept failing (after retries) or refused the request. */
export class SourceRequestError extends FerrySyncError {
  override readonly name = 'SourceRequestError';
  readonly code = 'SYNC_SOURCE_REQUEST';
  readonly retryable = true;
  readonly page: number;
  readonly status: number | undefined;
  constructor(page: number, url: string, detail: string, status?: number) {
    super(`source page ${page} (${url}): ${detail}`);
    this.page = page;
    this.status = status;
  }
}

/** A pagination loop: a next URL or cursor already followed, or a page equal to the previous one. */
export class PaginationLoopError extends FerrySyncError {
  override readonly name = 'PaginationLoopError';
  readonly code = 'SYNC_PAGINATION_LOOP';
  readonly retryable = false;
}

/** Reading would overrun the run's budget (the next slot, or the rate budget): end `Partial`. */
export class RunBudgetExhaustedError extends FerrySyncError {
  override readonly name = 'RunBudgetExhaustedError';
  readonly code = 'SYNC_BUDGET_EXHAUSTED';
  readonly retryable = true;
}

/** The run lost its lock (expired while paused, or replaced): it stops writing at once. */
export class RunLockLostError extends FerrySyncError {
  override readonly name = 'RunLockLostError';
  readonly code = 'SYNC_LOCK_LOST';
  readonly retryable = true;
}

/** The run was cancelled (Replace policy, shutdown, spec change). */
export class RunCancelledError extends FerrySyncError {
  override readonly name = 'RunCancelledError';
  readonly code = 'SYNC_CANCELLED';
  readonly retryable = true;
}

/** The target is unusable for the whole run (breaker open, credentials refused). */
export class TargetUnavailableError extends FerrySyncError {
  override readonly name = 'TargetUnavailableError';
  readonly code = 'SYNC_TARGET_UNAVAILABLE';
  readonly retryable = true;
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}
