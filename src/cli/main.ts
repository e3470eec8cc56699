#!/usr/bin/env node
/**
 * The `ferry` command. A malformed argument prints usage to stderr and exits 2; an unexpected
 * error exits 1.
 */
import { readFileSync } from 'node:fs';
import { controllerUsage, parseControllerFlags } from './controller-flags.ts';
import { runController } from './run-controller.ts';
import { UsageError } from './usage-error.ts';

const usage = `Usage: ferry <command> [options]

Commands:
  controller     run the operator (see ferry controller --help)
  version        print Ferry's version
  help           print this help
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'controller') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(controllerUsage);
      return 0;
    }
    try {
      return await runController(parseControllerFlags(rest, process.env), version());
    } catch (err) {
      if (err instanceof UsageError) {
        process.stderr.write(`ferry controller: ${err.message}\n\n${controllerUsage}`);
        return 2;
      }
      throw err;
    }
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage);
    return 0;
  }
  if ((command === 'version' || command === '--version') && rest.length === 0) {
    process.stdout.write(`ferry ${version()}\n`);
    return 0;
  }
  process.stderr.write(command === undefined ? usage : `ferry: unknown command or argument: ${argv.join(' ')}\n\n${usage}`);
  return 2;
}

// Exit explicitly: whatever is still scheduled after `main` returned (a NATS client reconnecting
// to a server that is gone, sockets of an abandoned runnable) must not keep the process alive.
let code: number;
try {
  code = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`ferry: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  code = 1;
}
process.exit(code);
