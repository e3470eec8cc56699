/**
 * The shape of a CLI command and the two things every command does with its usage text: print it
 * (`--help`: stdout, exit 0; no subcommand: stderr, exit 2), and attach it to a UsageError
 * raised while parsing its arguments, so main prints the usage of the command that was wrong.
 */
import { basename } from 'node:path';
import { UsageError } from '../usage-error.ts';

/** What every command gets from main. */
export interface CliContext {
  /** `ferry`, or `kubectl ferry` when run as the kubectl plugin. */
  readonly prog: string;
  readonly env: NodeJS.ProcessEnv;
  /** Whether stdin is a terminal (confirmation prompts). */
  readonly interactive: boolean;
}

/** The name the user typed: `kubectl ferry` when run through an executable named `kubectl-ferry`. */
export function programName(argv1: string | undefined): string {
  return argv1 !== undefined && basename(argv1).startsWith('kubectl-') ? `kubectl ${basename(argv1).slice('kubectl-'.length).replace(/\.[jt]s$/, '')}` : 'ferry';
}

/** Runs one command; resolves to the exit code. UsageError → exit 2, CommandError → exit 1. */
export type Command = (argv: readonly string[], ctx: CliContext) => Promise<number>;

/** Prints `usage` (stdout when asked for, stderr when it answers a mistake) and returns `code`. */
export function printUsage(usage: string, code: 0 | 2): number {
  (code === 0 ? process.stdout : process.stderr).write(usage);
  return code;
}

/** Runs `run`, giving any UsageError it throws without a usage this command's `usage`. */
export async function withUsage(command: string, usage: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError && err.usage === undefined) throw new UsageError(err.message, { command, usage, cause: err });
    throw err;
  }
}
