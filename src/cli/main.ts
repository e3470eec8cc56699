#!/usr/bin/env node
/**
 * The `ferry` command (also the kubectl plugin `kubectl ferry`: an executable named
 * `kubectl-ferry` on PATH). A small dispatcher: each command lives in commands/.
 *
 * Exit codes: 0 success; 1 the command failed (a cluster or NATS that cannot be reached, an object
 * that does not exist, a validation problem — one line on stderr, no stack trace); 2 a malformed
 * command line (the usage of the command on stderr). A stack trace means a bug.
 */
import { readFileSync } from 'node:fs';
import { CommandError } from './command-error.ts';
import { programName, withUsage, type CliContext, type Command } from './commands/command.ts';
import { slimKubeClient } from './slim-kube-client.ts';
import { UsageError } from './usage-error.ts';

const usage = (prog: string): string => `Usage: ${prog} <command> [options]

Commands:
  status         Integrations and SyncSchedules: ready, problems, delivered, fallback, circuit, last run
  fallback       parked messages: ls, show, redrive, purge
  validate       check manifests offline (GitOps CI), optionally run a sample event through them
  run            run one Integration locally against NATS, without a cluster
  controller     run the operator (see ${prog} controller --help)
  version        print Ferry's version
  help           print this help

Run ${prog} <command> --help for a command's flags.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

interface Loaded {
  readonly run: Command;
  /** The usage its argument errors print; fallback and controller attach their own. */
  readonly usage?: (prog: string) => string;
}

/**
 * Each command, loaded when it is run: a command pays only for the modules it uses (the
 * Kubernetes client alone takes most of a second to load).
 */
const commands: Readonly<Record<string, () => Promise<Loaded>>> = {
  status: async () => {
    const m = await import('./commands/status.ts');
    return { run: m.statusCommand, usage: m.statusUsage };
  },
  fallback: async () => ({ run: (await import('./commands/fallback.ts')).fallbackCommand }),
  validate: async () => {
    const m = await import('./commands/validate.ts');
    return { run: m.validateCommand, usage: m.validateUsage };
  },
  run: async () => {
    const m = await import('./commands/run.ts');
    return { run: m.runCommand, usage: m.runUsage };
  },
  controller: async () => {
    const [flags, controller] = await Promise.all([import('./controller-flags.ts'), import('./run-controller.ts')]);
    return {
      run: async (argv) => {
        if (argv.includes('--help') || argv.includes('-h')) {
          process.stdout.write(flags.controllerUsage);
          return 0;
        }
        try {
          return await controller.runController(flags.parseControllerFlags(argv, process.env), version());
        } catch (err) {
          if (err instanceof UsageError && err.usage === undefined) throw new UsageError(err.message, { command: 'controller', usage: flags.controllerUsage });
          throw err;
        }
      },
    };
  },
};

export async function main(argv: readonly string[], ctx: CliContext): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage(ctx.prog));
    return 0;
  }
  if ((command === 'version' || command === '--version') && rest.length === 0) {
    process.stdout.write(`ferry ${version()}\n`);
    return 0;
  }
  const load = command === undefined ? undefined : commands[command];
  if (!load || command === undefined) {
    process.stderr.write(command === undefined ? usage(ctx.prog) : `${ctx.prog}: unknown command or argument: ${argv.join(' ')}\n\n${usage(ctx.prog)}`);
    return 2;
  }
  try {
    const { run, usage: usageOf } = await load();
    return usageOf === undefined ? await run(rest, ctx) : await withUsage(command, usageOf(ctx.prog), () => run(rest, ctx));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${ctx.prog} ${err.command ?? command}: ${err.message}\n\n${err.usage ?? usage(ctx.prog)}`);
      return 2;
    }
    if (err instanceof CommandError) {
      process.stderr.write(`${ctx.prog}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** stdin is a terminal; `isTTY` is absent (not false) on a pipe or file, whatever its type says. */
function isTerminal(): boolean {
  return (process.stdin as { isTTY?: boolean }).isTTY === true;
}

// Exit explicitly: whatever is still scheduled after `main` returned (a NATS client reconnecting
// to a server that is gone, sockets of an abandoned runnable) must not keep the process alive.
let code: number;
slimKubeClient();
try {
  code = await main(process.argv.slice(2), { prog: programName(process.argv[1]), env: process.env, interactive: isTerminal() });
} catch (err) {
  process.stderr.write(`ferry: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  code = 1;
}
process.exit(code);
