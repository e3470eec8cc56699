/**
 * Errors of the runtime's own machinery (as opposed to an event's content, see errors.ts).
 */

/** A generation that cannot run: the field and why. The last good generation keeps running. */
export class PipelineConfigError extends Error {
  override readonly name = 'PipelineConfigError';
  readonly code = 'FERRY_PIPELINE_CONFIG';
  readonly retryable = false;
  readonly field: string;
  readonly detail: string;
  constructor(field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.field = field;
    this.detail = detail;
  }
}
