/**
 * Structured JSON logs (pino). Secrets never reach a log: auth headers, tokens, passwords and
 * Secret data are redacted by path wherever they appear in a logged object.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const redactPaths: readonly string[] = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers["proxy-authorization"]',
  '*.headers.authorization',
  'token',
  '*.token',
  'password',
  '*.password',
  'clientSecret',
  '*.clientSecret',
  'secret',
  '*.secret',
  'data',
  // NATS credentials by the names the NATS client and server use (CONNECT's pass, auth_token,
  // jwt; a .creds file, an nkey seed); Ferry itself passes them as redacting SecretValues.
  'pass',
  '*.pass',
  'auth_token',
  '*.auth_token',
  'jwt',
  '*.jwt',
  'creds',
  '*.creds',
  'seed',
  '*.seed',
  'secretData',
  '*.secretData',
];

export interface LoggerOptions {
  readonly level?: string;
  readonly name?: string;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.FERRY_LOG_LEVEL ?? 'info',
      name: options.name ?? 'ferry',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...redactPaths], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

/** A logger that discards everything, for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
