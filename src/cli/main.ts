#!/usr/bin/env node
/**
 * The `ferry` command. Subcommands are added by later issues; until then only `--version` and
 * `help` exist. A malformed argument prints usage to stderr and exits 2.
 */
import { readFileSync } from 'node:fs';

const usage = `Usage: ferry <command> [options]

Commands:
  version        print Ferry's version
  help           print this help
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function main(argv: readonly string[]): number {
  const [command, ...rest] = argv;
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

process.exitCode = main(process.argv.slice(2));
