/**
 * A malformed command line: printed with the usage text, exit code 2. `command` and `usage` are
 * those of the (sub)command whose arguments were wrong, filled in by the command that knows them
 * (see commands/command.ts); main prints the top-level usage when they are absent.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
  readonly retryable = false;
  readonly command: string | undefined;
  readonly usage: string | undefined;

  constructor(message: string, options?: { readonly command?: string; readonly usage?: string; readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.command = options?.command;
    this.usage = options?.usage;
  }
}
