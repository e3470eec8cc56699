/**
 * Failures a command reports as one line on stderr with exit code 1 — a cluster or NATS that
 * cannot be reached, an object that does not exist — never a stack trace. Anything else that
 * escapes a command is a bug and keeps its stack (main prints it). Kept free of imports: main
 * loads it before any command.
 */
/** A command failed for a reason the user can act on; `message` is the whole story (exit 1, no stack). */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  readonly code = 'COMMAND_FAILED';
  readonly retryable = false;
}

/** The innermost message of an error's cause chain (`connect ECONNREFUSED 127.0.0.1:6443`). */
export function rootCause(err: unknown): string {
  let current: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  for (let depth = 0; depth < 10 && current instanceof Error; depth++) {
    if (current instanceof AggregateError && current.errors[0] instanceof Error) {
      current = current.errors[0];
    } else if (current.cause !== undefined) {
      current = current.cause;
    } else {
      break;
    }
    if (current instanceof Error && current.message !== '') message = current.message;
  }
  return message;
}
