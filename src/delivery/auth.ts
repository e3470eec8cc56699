/**
 * Outbound authentication: providers that produce the auth headers of an attempt. Secrets come in
 * as already-resolved strings (the runtime reads the Secret) and live only in closures or private
 * fields, so neither `JSON.stringify` nor `util.inspect` of a provider shows them; they are never
 * logged here.
 */

/** The headers of one attempt, and (for refreshable providers) the credential they carry. */
export interface Authorization {
  readonly headers: Readonly<Record<string, string>>;
  /** The access token sent, so a 401 invalidates exactly that token. Absent for static secrets. */
  readonly token?: string;
}

/**
 * Produces auth headers. `authorize()` is called before every attempt; it may fetch (OAuth2) and
 * then rejects with `AuthTokenError`. `invalidate()`, when present, is called once after the
 * target answered 401 to `rejected`; it returns true if a fresh credential is worth one more try.
 */
export interface AuthProvider {
  authorize(): Promise<Authorization>;
  invalidate?(rejected: Authorization): boolean;
  /** Lower-case names of the headers this provider sets; the runtime redacts them in logs. */
  readonly sensitiveHeaders: readonly string[];
}

/** `Authorization: Bearer <token>`. */
export function bearerAuth(token: string): AuthProvider {
  const headers = { authorization: `Bearer ${token}` };
  return { authorize: () => Promise.resolve({ headers }), sensitiveHeaders: ['authorization'] };
}

/** `Authorization: Basic base64(username:password)` (RFC 7617, UTF-8). */
export function basicAuth(username: string, password: string): AuthProvider {
  const headers = { authorization: `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}` };
  return { authorize: () => Promise.resolve({ headers }), sensitiveHeaders: ['authorization'] };
}

/** The secret as the value of `header` (e.g. `X-Api-Key`). */
export function apiKeyAuth(header: string, key: string): AuthProvider {
  const name = header.toLowerCase();
  const headers = { [name]: key };
  return { authorize: () => Promise.resolve({ headers }), sensitiveHeaders: [name] };
}
