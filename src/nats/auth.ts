/**
 * How Ferry proves who it is to NATS: one authentication method (a .creds file, an nkey seed,
 * user and password, or a token) and optionally TLS (a CA to trust, and a client certificate for
 * mutual TLS). The CLI reads files and flags into a {@link NatsSecurity}; this module turns it into
 * the client's connection options and nothing else (pure: no file or network I/O).
 *
 * Secrets travel as {@link SecretValue}: it prints as `[redacted]` in every way a value can reach a
 * log line (template strings, JSON, `util.inspect`), so a config object logged by mistake leaks
 * nothing. Only {@link natsConnectionOptions} calls `reveal()`.
 */
import { inspect } from 'node:util';
import {
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type ConnectionOptions,
} from '@nats-io/transport-node';

const REDACTED = '[redacted]';

/** A secret string that never prints itself; `reveal()` is the only way to read it. */
export class SecretValue {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}

/** The one way Ferry authenticates to NATS (NATS accepts one per connection). */
export type NatsAuth =
  | { readonly kind: 'none' }
  /** A .creds file: the user JWT and its nkey seed. */
  | { readonly kind: 'creds'; readonly creds: SecretValue }
  /** An nkey user seed (`SU…`): the server signs a nonce challenge with it. */
  | { readonly kind: 'nkey'; readonly seed: SecretValue }
  | { readonly kind: 'userPassword'; readonly user: string; readonly password: SecretValue }
  | { readonly kind: 'token'; readonly token: SecretValue };

/** TLS towards NATS: PEM contents, not paths (read once by the caller, so a bad file fails at start). */
export interface NatsTls {
  /** CA bundle to trust instead of the system's. */
  readonly ca?: string;
  /** Client certificate and its key, for mutual TLS; always both or neither. */
  readonly client?: { readonly cert: string; readonly key: SecretValue };
}

export interface NatsSecurity {
  readonly auth: NatsAuth;
  /** Undefined: TLS only if the server requires it, trusting the system CAs. */
  readonly tls?: NatsTls;
}

export const NO_SECURITY: NatsSecurity = { auth: { kind: 'none' } };

/** What is wrong with a .creds file's text, or undefined when it holds a JWT and a seed. */
export function credsProblem(text: string): string | undefined {
  // The layout nsc writes and credsAuthenticator parses: two armored blocks, JWT first.
  const jwt = /-{3,}BEGIN NATS USER JWT-{3,}\s*\n\s*(\S+)\s*\n\s*-{3,}END NATS USER JWT/.exec(text);
  const seed = /-{3,}BEGIN USER NKEY SEED-{3,}\s*\n\s*(\S+)\s*\n\s*-{3,}END USER NKEY SEED/.exec(text);
  if (!jwt) return 'no NATS USER JWT block';
  if (jwt[1]?.split('.').length !== 3) return 'the NATS USER JWT block does not hold a JWT';
  if (!seed) return 'no USER NKEY SEED block';
  if (!/^SU[A-Z2-7]+$/.test(seed[1] ?? '')) return 'the USER NKEY SEED block does not hold a user seed (SU…)';
  return undefined;
}

/** What is wrong with an nkey seed file's text, or undefined when it is a user seed. */
export function nkeySeedProblem(text: string): string | undefined {
  // Base32 (RFC 4648, no padding) of prefix + 32-byte key + CRC16: 58 characters, `SU` for a user.
  return /^SU[A-Z2-7]{56}$/.test(text.trim()) ? undefined : 'not an nkey user seed (58 characters starting with SU)';
}

/**
 * The connection options for `security`: an authenticator and TLS options. Callers spread them
 * into their own options (servers, reconnect policy).
 */
export function natsConnectionOptions(security: NatsSecurity): Pick<ConnectionOptions, 'authenticator' | 'tls'> {
  const out: { authenticator?: ConnectionOptions['authenticator']; tls?: ConnectionOptions['tls'] } = {};
  const auth = security.auth;
  switch (auth.kind) {
    case 'none':
      break;
    case 'creds':
      out.authenticator = credsAuthenticator(new TextEncoder().encode(auth.creds.reveal()));
      break;
    case 'nkey':
      out.authenticator = nkeyAuthenticator(new TextEncoder().encode(auth.seed.reveal().trim()));
      break;
    case 'userPassword':
      out.authenticator = usernamePasswordAuthenticator(auth.user, auth.password.reveal());
      break;
    case 'token':
      out.authenticator = tokenAuthenticator(auth.token.reveal());
      break;
  }
  const tls = security.tls;
  if (tls !== undefined) {
    out.tls = {
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.client === undefined ? {} : { cert: tls.client.cert, key: tls.client.key.reveal() }),
    };
  }
  return out;
}

/**
 * A server URL for logs and messages: credentials in its user-info part (`nats://u:p@host`, which
 * the client accepts) are replaced, so a URL can be logged whatever it holds.
 */
export function displayServer(server: string): string {
  return server.replace(/^([a-z]+:\/\/)[^@/\s]*@/i, '$1[redacted]@');
}

/** A short description for logs and errors: the method and user, never a secret. */
export function describeSecurity(security: NatsSecurity): string {
  const auth = security.auth.kind === 'userPassword' ? `user ${security.auth.user}` : security.auth.kind;
  const tls = security.tls === undefined ? 'no TLS' : security.tls.client === undefined ? 'TLS' : 'mutual TLS';
  return `${auth === 'none' ? 'no auth' : auth}, ${tls}`;
}
