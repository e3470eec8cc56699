/**
 * OAuth2 client credentials (RFC 6749 §4.4) as an {@link AuthProvider}: fetches an access token
 * from the token endpoint, caches it (shared {@link TokenCache}) until shortly before it expires,
 * and drops it when a target answers 401 so the next attempt fetches a fresh one.
 *
 * The token request goes through a {@link Deliverer} — the same guarded pools, SSRF policy and
 * timeouts as deliveries — because `tokenUrl` is user-supplied too.
 */
import type { Clock } from '../observability/index.ts';
import type { Authorization, AuthProvider } from './auth.ts';
import type { Deliverer, DeliveryResponse } from './deliverer.ts';
import { AuthTokenError, FerryDeliveryError } from './errors.ts';
import { tokenCacheKey, tokenUsableUntil, type CachedToken, type TokenCache, type TokenLifetimeOptions } from './token-cache.ts';

/** A resolved `auth.oauth2ClientCredentials`, with the client secret already read from its Secret. */
export interface OAuth2ClientCredentialsOptions extends TokenLifetimeOptions {
  readonly tokenUrl: string;
  readonly clientId: string;
  /** Already resolved from its Secret. */
  readonly clientSecret: string;
  readonly scopes?: readonly string[];
  /** Sent as `audience` (Auth0 and others need it). */
  readonly audience?: string;
  /**
   * How the client authenticates to the token endpoint: `basic` (HTTP Basic, which RFC 6749 says
   * every server must support; the default) or `body` (`client_id`/`client_secret` form fields).
   */
  readonly clientAuthentication?: 'basic' | 'body';
  /** Bound on one token request (default 10 s). */
  readonly timeoutMs?: number;
}

/** What the provider uses to fetch and keep tokens. */
export interface OAuth2Dependencies {
  /** Sends the token request; normally the process's HttpDeliverer (never an authenticated one). */
  readonly deliverer: Deliverer;
  readonly cache: TokenCache;
  readonly clock: Clock;
}

/** Client-credentials auth. Construct once per Integration generation; no I/O until `authorize()`. */
export class OAuth2ClientCredentials implements AuthProvider {
  readonly sensitiveHeaders = ['authorization'] as const;
  readonly #options: OAuth2ClientCredentialsOptions;
  readonly #deps: OAuth2Dependencies;
  readonly #key: string;

  constructor(options: OAuth2ClientCredentialsOptions, dependencies: OAuth2Dependencies) {
    this.#options = options;
    this.#deps = dependencies;
    this.#key = tokenCacheKey(options.tokenUrl, options.clientId, options.scopes, options.audience);
  }

  /**
   * A bearer header with a cached or freshly fetched token.
   * @throws AuthTokenError when the endpoint is unreachable (retryable), answers 5xx/429
   *   (retryable), refuses the client (4xx, not retryable) or answers something that is not a
   *   bearer token (not retryable).
   */
  async authorize(): Promise<Authorization> {
    const token = await this.#deps.cache.getOrFetch(this.#key, () => this.#fetch());
    return { headers: { authorization: `Bearer ${token.accessToken}` }, token: token.accessToken };
  }

  /** Drops the rejected token (if still cached) and asks for one more try with a fresh one. */
  invalidate(rejected: Authorization): boolean {
    if (rejected.token !== undefined) this.#deps.cache.invalidate(this.#key, rejected.token);
    return true;
  }

  /** JSON.stringify/inspect show the endpoint and client, never the secret. */
  toJSON(): { tokenUrl: string; clientId: string; scopes: readonly string[] } {
    return { tokenUrl: this.#options.tokenUrl, clientId: this.#options.clientId, scopes: this.#options.scopes ?? [] };
  }

  async #fetch(): Promise<CachedToken> {
    const o = this.#options;
    const form: Record<string, string> = { grant_type: 'client_credentials' };
    if (o.scopes && o.scopes.length > 0) form.scope = o.scopes.join(' ');
    if (o.audience !== undefined) form.audience = o.audience;
    const headers: Record<string, string> = { accept: 'application/json' };
    if ((o.clientAuthentication ?? 'basic') === 'basic') {
      // RFC 6749 §2.3.1: both parts form-urlencoded before Basic encoding.
      const credentials = `${formComponent(o.clientId)}:${formComponent(o.clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
    } else {
      form.client_id = o.clientId;
      form.client_secret = o.clientSecret;
    }
    const requestedAt = this.#deps.clock.now();
    let response: DeliveryResponse;
    try {
      response = await this.#deps.deliverer.deliver({
        url: o.tokenUrl,
        method: 'POST',
        headers,
        body: { encoding: 'form', value: form },
        timeoutMs: o.timeoutMs ?? 10_000,
      });
    } catch (error) {
      const retryable = error instanceof FerryDeliveryError ? error.retryable : false;
      const detail = error instanceof Error ? error.message : 'unknown error';
      throw new AuthTokenError({ tokenUrl: o.tokenUrl, retryable, detail }, { cause: error });
    }
    return parseTokenResponse(o.tokenUrl, response, requestedAt, o);
  }
}

/**
 * Reads a token endpoint's answer (RFC 6749 §5.1/§5.2). Pure; exported for tests.
 * @throws AuthTokenError as described on {@link OAuth2ClientCredentials.authorize}.
 */
export function parseTokenResponse(
  tokenUrl: string,
  response: Pick<DeliveryResponse, 'status' | 'body'>,
  receivedAt: number,
  lifetime: TokenLifetimeOptions = {},
): CachedToken {
  const json = parseJson(response.body);
  if (response.status < 200 || response.status > 299) {
    const oauthError = typeof json?.error === 'string' && /^[\x20-\x7e]{1,64}$/.test(json.error) ? json.error : undefined;
    const retryable = response.status === 429 || response.status >= 500;
    const detail = `HTTP ${response.status}${oauthError ? ` ${oauthError}` : ''}`;
    const fields = { tokenUrl, status: response.status, retryable, detail };
    throw new AuthTokenError(oauthError === undefined ? fields : { ...fields, oauthError });
  }
  const fail = (detail: string): never => {
    throw new AuthTokenError({ tokenUrl, status: response.status, retryable: false, detail });
  };
  if (!json) return fail('the response is not a JSON object');
  const accessToken = json.access_token;
  if (typeof accessToken !== 'string' || accessToken === '') return fail('the response has no access_token');
  if (json.token_type !== undefined && (typeof json.token_type !== 'string' || json.token_type.toLowerCase() !== 'bearer')) {
    return fail('the token is not a bearer token');
  }
  const rawExpiresIn = json.expires_in;
  // Some servers send expires_in as a string; tokenUsableUntil treats NaN as "not given".
  const expiresIn = typeof rawExpiresIn === 'number' || typeof rawExpiresIn === 'string' ? Number(rawExpiresIn) : undefined;
  return { accessToken, usableUntil: tokenUsableUntil(receivedAt, expiresIn, lifetime) };
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function formComponent(text: string): string {
  return new URLSearchParams([['', text]]).toString().slice(1);
}
