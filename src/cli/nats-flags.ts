/**
 * The NATS connection flags that `ferry controller` and every CLI command talking to NATS share:
 * the servers, one authentication method and TLS. Flags win over environment variables; the
 * password is read from NATS_PASSWORD only (a flag would show in `ps` and in the pod spec).
 *
 * Files are read here, once, so a wrong path fails at start with the flag and the path in the
 * message — never the content. Secrets leave this module wrapped in SecretValue.
 */
import { readFileSync } from 'node:fs';
import type { ParseArgsOptionsConfig } from 'node:util';
import { credsProblem, displayServer, nkeySeedProblem, SecretValue, type NatsAuth, type NatsSecurity, type NatsTls } from '../nats/index.ts';
import { CommandError } from './command-error.ts';
import { UsageError } from './usage-error.ts';

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** Flags for credentials and TLS (the server flag `--nats-url` is declared with them). */
export const NATS_SECURITY_OPTIONS = {
  'nats-creds': { type: 'string' },
  'nats-nkey': { type: 'string' },
  'nats-user': { type: 'string' },
  'nats-token-file': { type: 'string' },
  'nats-tls-ca': { type: 'string' },
  'nats-tls-cert': { type: 'string' },
  'nats-tls-key': { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

export const NATS_FLAG_OPTIONS = { 'nats-url': { type: 'string' }, ...NATS_SECURITY_OPTIONS } as const satisfies ParseArgsOptionsConfig;

/** Usage lines of the credential and TLS flags, for every command that has them. */
export const NATS_SECURITY_USAGE = `  NATS credentials, at most one of (default: none):
  --nats-creds PATH        .creds file: user JWT and nkey seed ($FERRY_NATS_CREDS)
  --nats-nkey PATH         nkey user seed file ($FERRY_NATS_NKEY)
  --nats-user USER         user name; the password comes from $NATS_PASSWORD ($FERRY_NATS_USER)
  --nats-token-file PATH   file holding a token ($FERRY_NATS_TOKEN_FILE)
  NATS TLS (default: TLS only when the server asks for it, trusting the system CAs):
  --nats-tls-ca PATH       CA bundle to trust ($FERRY_NATS_TLS_CA)
  --nats-tls-cert PATH     client certificate for mutual TLS, with --nats-tls-key ($FERRY_NATS_TLS_CERT)
  --nats-tls-key PATH      its private key ($FERRY_NATS_TLS_KEY)`;

export type NatsFlagValues = { readonly [K in keyof typeof NATS_FLAG_OPTIONS]?: string | undefined };

/** Where and how to connect to NATS. */
export interface NatsTarget {
  readonly servers: readonly string[];
  /** The servers as given, comma-joined, for messages (credentials in a URL replaced). */
  readonly url: string;
  readonly security: NatsSecurity;
}

/** Reads a file a flag names; an error names the flag and the path, never the content. */
export type ReadFile = (path: string) => string;

const readUtf8: ReadFile = (path) => readFileSync(path, 'utf8');

function read(flag: string, path: string, readFile: ReadFile): string {
  try {
    return readFile(path);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'unreadable';
    throw new CommandError(`--${flag}: cannot read ${path} (${reason})`, { cause: err });
  }
}

const AUTH_FLAGS = ['nats-creds', 'nats-nkey', 'nats-user', 'nats-token-file'] as const;

/**
 * The servers from `--nats-url`, else $NATS_URL, else the local default.
 *
 * @throws UsageError for an entry that is not a NATS URL or HOST:PORT.
 */
export function natsServers(flag: string | undefined, env: NodeJS.ProcessEnv): string[] {
  const servers = (flag ?? env.NATS_URL ?? DEFAULT_NATS_URL).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const s of servers) {
    if (!/^(nats|tls|wss?):\/\/[^\s/]+$/.test(s) && !/^[^\s/:]+:\d+$/.test(s)) throw new UsageError(`--nats-url: ${JSON.stringify(s)} is not a NATS URL`);
  }
  if (servers.length === 0) throw new UsageError('--nats-url: no server given');
  return servers;
}

/**
 * Credentials and TLS from the flags and their FERRY_NATS_* variables.
 *
 * @throws UsageError when more than one authentication method is given (naming them), when
 *   --nats-user has no NATS_PASSWORD, or when only one of --nats-tls-cert / --nats-tls-key is;
 *   CommandError when a file cannot be read or does not hold what its flag expects.
 */
export function natsSecurity(values: NatsFlagValues, env: NodeJS.ProcessEnv, readFile: ReadFile = readUtf8): NatsSecurity {
  const pick = (flag: keyof NatsFlagValues, envName: string): string | undefined => {
    const v = values[flag] ?? env[envName];
    return v === undefined || v === '' ? undefined : v;
  };
  const given = {
    'nats-creds': pick('nats-creds', 'FERRY_NATS_CREDS'),
    'nats-nkey': pick('nats-nkey', 'FERRY_NATS_NKEY'),
    'nats-user': pick('nats-user', 'FERRY_NATS_USER'),
    'nats-token-file': pick('nats-token-file', 'FERRY_NATS_TOKEN_FILE'),
  };
  const chosen = AUTH_FLAGS.filter((f) => given[f] !== undefined);
  if (chosen.length > 1) throw new UsageError(`NATS credentials: give at most one of ${chosen.map((f) => `--${f}`).join(', ')}`);

  let auth: NatsAuth = { kind: 'none' };
  const creds = given['nats-creds'];
  const nkey = given['nats-nkey'];
  const user = given['nats-user'];
  const tokenFile = given['nats-token-file'];
  if (creds !== undefined) {
    const text = read('nats-creds', creds, readFile);
    const problem = credsProblem(text);
    if (problem !== undefined) throw new CommandError(`--nats-creds: ${creds} is not a .creds file: ${problem}`);
    auth = { kind: 'creds', creds: new SecretValue(text) };
  } else if (nkey !== undefined) {
    const text = read('nats-nkey', nkey, readFile);
    const problem = nkeySeedProblem(text);
    if (problem !== undefined) throw new CommandError(`--nats-nkey: ${nkey} is ${problem}`);
    auth = { kind: 'nkey', seed: new SecretValue(text.trim()) };
  } else if (user !== undefined) {
    const password = env.NATS_PASSWORD;
    if (password === undefined || password === '') throw new UsageError('--nats-user needs the password in the environment variable NATS_PASSWORD');
    auth = { kind: 'userPassword', user, password: new SecretValue(password) };
  } else if (tokenFile !== undefined) {
    // A trailing newline is the editor's, not the token's (as kubectl's --token-file).
    const token = read('nats-token-file', tokenFile, readFile).trim();
    if (token === '') throw new CommandError(`--nats-token-file: ${tokenFile} is empty`);
    auth = { kind: 'token', token: new SecretValue(token) };
  }

  const caPath = pick('nats-tls-ca', 'FERRY_NATS_TLS_CA');
  const certPath = pick('nats-tls-cert', 'FERRY_NATS_TLS_CERT');
  const keyPath = pick('nats-tls-key', 'FERRY_NATS_TLS_KEY');
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new UsageError(certPath === undefined ? '--nats-tls-key needs --nats-tls-cert' : '--nats-tls-cert needs --nats-tls-key');
  }
  let tls: NatsTls | undefined;
  if (caPath !== undefined || certPath !== undefined) {
    const pem = (flag: string, path: string, label: RegExp): string => {
      const text = read(flag, path, readFile);
      if (!label.test(text)) throw new CommandError(`--${flag}: ${path} holds no PEM ${flag === 'nats-tls-key' ? 'private key' : 'certificate'}`);
      return text;
    };
    tls = {
      ...(caPath === undefined ? {} : { ca: pem('nats-tls-ca', caPath, /-----BEGIN CERTIFICATE-----/) }),
      ...(certPath === undefined || keyPath === undefined
        ? {}
        : {
            client: {
              cert: pem('nats-tls-cert', certPath, /-----BEGIN CERTIFICATE-----/),
              key: new SecretValue(pem('nats-tls-key', keyPath, /-----BEGIN [A-Z ]*PRIVATE KEY-----/)),
            },
          }),
    };
  }
  return tls === undefined ? { auth } : { auth, tls };
}

/**
 * Everything needed to connect: servers, credentials and TLS.
 *
 * @throws UsageError / CommandError as {@link natsServers} and {@link natsSecurity}.
 */
export function natsTarget(values: NatsFlagValues, env: NodeJS.ProcessEnv, readFile: ReadFile = readUtf8): NatsTarget {
  const servers = natsServers(values['nats-url'], env);
  return { servers, url: servers.map(displayServer).join(','), security: natsSecurity(values, env, readFile) };
}
