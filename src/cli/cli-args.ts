/**
 * Command-line parsing shared by every `ferry` command: node:util `parseArgs` in strict mode (an
 * unknown flag, a missing value or an unexpected argument is a UsageError: usage on stderr, exit
 * 2), the flags several commands share, and typed readers for flag values.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { FALLBACK_REASONS, tryParseDuration, type ParkedReason } from '../api/index.ts';
import { NATS_FLAG_OPTIONS, NATS_SECURITY_USAGE } from './nats-flags.ts';
import { UsageError } from './usage-error.ts';

export type { CliContext } from './commands/command.ts';

/** Flags of every command that talks to the API server (kubectl's names and meaning). */
export const KUBE_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
} as const satisfies ParseArgsOptionsConfig;

export const ALL_NAMESPACES_OPTION = { 'all-namespaces': { type: 'boolean', short: 'A' } } as const satisfies ParseArgsOptionsConfig;

/** `--nats-url` and the credential and TLS flags (nats-flags.ts reads them with `natsTarget`). */
export const NATS_OPTIONS = NATS_FLAG_OPTIONS;

export const OUTPUT_OPTION = { output: { type: 'string', short: 'o' } } as const satisfies ParseArgsOptionsConfig;

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const satisfies ParseArgsOptionsConfig;

export const KUBE_USAGE = `  --kubeconfig PATH        kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)
  --context NAME           kubeconfig context (default: the current context)`;
export const NAMESPACE_USAGE = `  -n, --namespace NS       namespace (default: the context's namespace, else default)`;
export const ALL_NAMESPACES_USAGE = `  -A, --all-namespaces     every namespace`;
export const NATS_USAGE = `  --nats-url URL           NATS server(s), comma separated (default: $NATS_URL, else nats://127.0.0.1:4222)
${NATS_SECURITY_USAGE}`;

/**
 * Parses `argv` against `options` (plus `-h/--help`).
 *
 * @returns undefined when help was asked for (the caller prints usage and exits 0).
 * @throws UsageError for an unknown flag, a missing value, a flag of the wrong type, or more
 *   positionals than `maxPositionals`.
 */
export function parseCommand<O extends ParseArgsOptionsConfig>(
  argv: readonly string[],
  options: O,
  maxPositionals: number,
): { values: ReturnType<typeof parseArgs<{ options: O & typeof HELP_OPTION; strict: true; allowPositionals: true }>>['values']; positionals: string[] } | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, ...HELP_OPTION }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if ((parsed.values as { help?: boolean }).help === true) return undefined;
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[maxPositionals])}`);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

/** A whole number ≥ `min`, from flag `flag`. */
export function intFlag(flag: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,15}$/.test(value) || Number(value) < min) throw new UsageError(`--${flag} must be a whole number of at least ${min}, not ${JSON.stringify(value)}`);
  return Number(value);
}

/** A duration (`30s`, `1h`, `2d`) in milliseconds, from flag `flag`. */
export function durationFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = tryParseDuration(value);
  if (ms === undefined) throw new UsageError(`--${flag} must be a duration such as 30s, 1h or 2d, not ${JSON.stringify(value)}`);
  return ms;
}

/** `--reason exhausted,rejected` (repeatable) → the reasons, each one Ferry parks with. */
export function reasonsFlag(values: readonly string[] | undefined): ParkedReason[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const reasons = values.flatMap((v) => v.split(',')).map((r) => r.trim());
  const known = new Set<string>(FALLBACK_REASONS);
  const bad = reasons.find((r) => !known.has(r));
  if (bad !== undefined) throw new UsageError(`--reason must be one of ${FALLBACK_REASONS.join(', ')}, not ${JSON.stringify(bad)}`);
  return [...new Set(reasons)] as ParkedReason[];
}

/** One of `allowed`, from flag `flag`. */
export function choiceFlag<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
  return value as T;
}

/** The NATS servers: `--nats-url`, else $NATS_URL, else the local default. */
export function natsUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.NATS_URL ?? 'nats://127.0.0.1:4222';
}

/** A Kubernetes object name (DNS subdomain: lowercase letters, digits, `-` and `.`, at most 253). */
export function isObjectName(name: string): boolean {
  return name.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name);
}
